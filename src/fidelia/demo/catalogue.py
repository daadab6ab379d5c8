"""The demo retailer's world: an "Earth Care" shop with stores in French cities, a web shop and an
app; its catalogue (categories, brands, products, prices in EUR) and its customer archetypes.

Everything here is fixed data: SKUs, store ids and prices do not depend on the seed, so two data
sets generated with different seeds sell the same products in the same stores. Brands are
invented. The two stores the demo programme's check-in rule declares (``paris-rivoli``,
``lyon-part-dieu``) have exactly the coordinates of ``rules/demo_programme.yaml``; ``music`` is the
category of its happy-hour booster.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Store:
    id: str
    city: str
    lat: float
    lon: float
    weight: float  # share of the members whose home store it is
    postal_codes: tuple[str, ...]  # where its members live


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    brand: str
    price: Decimal
    gift: bool = False  # sells more in December


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    weight: float  # how often it lands in a basket, before a member's own affinities


@dataclass(frozen=True)
class Archetype:
    """A kind of customer: how often they buy and how they behave around their purchases."""

    name: str
    share: float  # of the members
    purchases_per_month: float  # while active
    basket_bias: float  # multiplies the odds of a bigger basket
    seasonal: bool = False  # buys mostly in December and in the sales
    lapses: bool = False  # stops buying part-way through the period
    one_off: bool = False  # buys once (or never) after enrolling


_LYON = "69001 69002 69003 69006 69007 69100 69300"
_PARIS = "75001 75002 75003 75004 75011 75012 75015 75018 75020 92100 92130 93100 94300"
STORES: tuple[Store, ...] = (
    Store("paris-rivoli", "Paris", 48.8606, 2.3376, 26, tuple(_PARIS.split())),
    Store("lyon-part-dieu", "Lyon", 45.7606, 4.8593, 18, tuple(_LYON.split())),
    Store("marseille-canebiere", "Marseille", 43.2988, 5.3800, 10, ("13001", "13006", "13008")),
    Store("toulouse-capitole", "Toulouse", 43.6045, 1.4440, 10, ("31000", "31200", "31400")),
    Store("strasbourg-kleber", "Strasbourg", 48.5836, 7.7456, 9, ("67000", "67100", "67200")),
    Store("bordeaux-sainte-catherine", "Bordeaux", 44.8404, -0.5738, 9, ("33000", "33800")),
    Store("lille-grand-place", "Lille", 50.6366, 3.0635, 9, ("59000", "59800", "59130")),
    Store("nantes-commerce", "Nantes", 47.2130, -1.5590, 9, ("44000", "44100", "44300")),
)  # fmt: skip

CATEGORIES: tuple[Category, ...] = (
    Category("music", "Musique", 14),
    Category("books", "Livres", 16),
    Category("home", "Maison", 15),
    Category("beauty", "Beauté", 14),
    Category("grocery", "Épicerie", 17),
    Category("outdoor", "Plein air", 8),
    Category("kids", "Enfants", 9),
    Category("tech", "High-tech reconditionné", 7),
)

_D = Decimal
# sku, name, brand, price, gift
_PRODUCTS: dict[str, tuple[tuple[str, str, str, str, bool], ...]] = {
    "music": (
        ("MUS-001", "Vinyle « Forêts sonores »", "Sillon Records", "24.90", True),
        ("MUS-002", "Vinyle « Jazz des marées »", "Sillon Records", "27.90", True),
        ("MUS-003", "CD « Chants d'oiseaux »", "Onde Verte", "12.99", False),
        ("MUS-004", "CD « Piano au jardin »", "Onde Verte", "14.99", False),
        ("MUS-005", "Casque audio en bambou", "Harmonia", "89.00", True),
        ("MUS-006", "Enceinte Bluetooth en liège", "Harmonia", "59.90", True),
        ("MUS-007", "Ukulélé soprano en acacia", "Harmonia", "49.90", True),
        ("MUS-008", "Jeu de cordes recyclées", "Harmonia", "9.90", False),
        ("MUS-009", "Platine vinyle reconditionnée", "Sillon Records", "179.00", True),
    ),
    "books": (
        ("LIV-001", "Le potager du balcon", "Éditions du Lierre", "19.90", False),
        ("LIV-002", "Cuisine zéro déchet", "Éditions du Lierre", "24.00", True),
        ("LIV-003", "Atlas des oiseaux de France", "Papier Vivant", "35.00", True),
        ("LIV-004", "Roman « La rivière lente »", "Papier Vivant", "21.50", True),
        ("LIV-005", "Carnet en papier recyclé", "Papier Vivant", "8.90", False),
        ("LIV-006", "Guide des sentiers des Alpes", "Éditions du Lierre", "16.90", False),
        ("LIV-007", "Album jeunesse « Petit Colibri »", "Papier Vivant", "13.90", True),
        ("LIV-008", "Agenda perpétuel illustré", "Papier Vivant", "15.00", True),
    ),
    "home": (
        ("MAI-001", "Gourde inox 750 ml", "Terre & Lin", "24.90", False),
        ("MAI-002", "Bougie cire de colza", "Atelier Bois Joli", "18.50", True),
        ("MAI-003", "Plaid en lin lavé", "Terre & Lin", "79.00", True),
        ("MAI-004", "Lot de 3 bee wraps", "Terre & Lin", "15.90", False),
        ("MAI-005", "Planche à découper en olivier", "Atelier Bois Joli", "32.00", True),
        ("MAI-006", "Composteur de cuisine", "Atelier Bois Joli", "45.00", False),
        ("MAI-007", "Linge de lit en chanvre", "Terre & Lin", "129.00", False),
        ("MAI-008", "Brosse vaisselle en hêtre", "Atelier Bois Joli", "5.90", False),
        ("MAI-009", "Diffuseur d'huiles essentielles", "Atelier Bois Joli", "39.90", True),
    ),
    "beauty": (
        ("BEA-001", "Savon surgras à l'avoine", "Savonnerie du Rhône", "5.50", False),
        ("BEA-002", "Shampoing solide", "Savonnerie du Rhône", "9.90", False),
        ("BEA-003", "Crème visage à l'aloe vera", "Aloé Pure", "22.00", False),
        ("BEA-004", "Coffret soins du corps", "Aloé Pure", "39.00", True),
        ("BEA-005", "Déodorant solide", "Savonnerie du Rhône", "7.90", False),
        ("BEA-006", "Huile sèche aux fleurs", "Aloé Pure", "26.50", True),
        ("BEA-007", "Brosse à dents en bambou", "Aloé Pure", "3.90", False),
        ("BEA-008", "Baume à lèvres", "Savonnerie du Rhône", "4.50", False),
    ),
    "grocery": (
        ("EPI-001", "Café bio en grains 1 kg", "Le Moulin Bio", "16.90", False),
        ("EPI-002", "Thé vert sencha 100 g", "Graines d'Ici", "8.50", False),
        ("EPI-003", "Miel de lavande 500 g", "Graines d'Ici", "11.90", True),
        ("EPI-004", "Chocolat noir 72 %", "Le Moulin Bio", "3.20", True),
        ("EPI-005", "Granola maison 500 g", "Le Moulin Bio", "6.90", False),
        ("EPI-006", "Huile d'olive vierge 75 cl", "Graines d'Ici", "14.50", False),
        ("EPI-007", "Coffret épices du monde", "Graines d'Ici", "29.00", True),
        ("EPI-008", "Lentilles vertes 1 kg", "Le Moulin Bio", "4.80", False),
        ("EPI-009", "Jus de pomme artisanal 1 l", "Le Moulin Bio", "3.90", False),
    ),
    "outdoor": (
        ("PLE-001", "Sac à dos 28 l en toile recyclée", "Sentier", "69.00", True),
        ("PLE-002", "Lampe frontale rechargeable", "Cime", "34.90", True),
        ("PLE-003", "Jumelles 8x42", "Cime", "119.00", True),
        ("PLE-004", "Nichoir à mésanges", "Sentier", "24.00", True),
        ("PLE-005", "Graines de fleurs mellifères", "Sentier", "4.90", False),
        ("PLE-006", "Popote inox de randonnée", "Cime", "39.00", False),
    ),
    "kids": (
        ("ENF-001", "Puzzle en bois « La forêt »", "P'tit Colibri", "19.90", True),
        ("ENF-002", "Jeu de société coopératif", "P'tit Colibri", "29.90", True),
        ("ENF-003", "Peluche en coton bio", "P'tit Colibri", "24.50", True),
        ("ENF-004", "Kit du petit jardinier", "Sentier", "22.00", True),
        ("ENF-005", "Crayons de cire d'abeille", "P'tit Colibri", "9.90", False),
        ("ENF-006", "Gourde enfant 350 ml", "Terre & Lin", "14.90", False),
    ),
    "tech": (
        ("TEC-001", "Smartphone reconditionné 128 Go", "ReNew", "249.00", True),
        ("TEC-002", "Chargeur solaire 10 000 mAh", "Circuit Court", "44.90", True),
        ("TEC-003", "Coque de téléphone compostable", "Circuit Court", "19.90", False),
        ("TEC-004", "Écouteurs reconditionnés", "ReNew", "59.00", True),
        ("TEC-005", "Câble USB-C tressé recyclé", "Circuit Court", "12.90", False),
        ("TEC-006", "Tablette reconditionnée 64 Go", "ReNew", "199.00", True),
    ),
}

PRODUCTS: tuple[Product, ...] = tuple(
    Product(sku, name, category, brand, _D(price), gift)
    for category, rows in _PRODUCTS.items()
    for sku, name, brand, price, gift in rows
)
PRODUCTS_BY_CATEGORY: dict[str, tuple[Product, ...]] = {
    c.id: tuple(p for p in PRODUCTS if p.category == c.id) for c in CATEGORIES
}
BRANDS: tuple[str, ...] = tuple(sorted({p.brand for p in PRODUCTS}))

ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("loyal", 0.12, 3.6, 1.3),
    Archetype("regular", 0.23, 1.4, 1.0),
    Archetype("occasional", 0.28, 0.45, 0.9),
    Archetype("seasonal", 0.10, 0.25, 1.4, seasonal=True),
    Archetype("lapsed", 0.17, 1.1, 1.0, lapses=True),
    Archetype("one_off", 0.10, 0.0, 0.8, one_off=True),
)

# Recycling drop-offs: what members bring back to the store.
RECYCLING_KINDS: tuple[str, ...] = ("textiles", "batteries", "electronics", "packaging", "books")
# Social networks members share on; the demo rule rewards the first four only.
SOCIAL_NETWORKS: tuple[tuple[str, float], ...] = (
    ("instagram", 40),
    ("facebook", 25),
    ("tiktok", 15),
    ("x", 10),
    ("pinterest", 10),
)
PAYMENT_MEANS: dict[str, tuple[tuple[tuple[str, ...], float], ...]] = {
    "store": ((("card",), 70), (("cash",), 12), (("contactless",), 12), (("card", "gift_card"), 6)),
    "web": ((("card",), 72), (("paypal",), 22), (("card", "gift_card"), 6)),
    "app": ((("card",), 55), (("apple_pay",), 25), (("google_pay",), 20)),
}
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.net", "example.org")  # RFC 2606
