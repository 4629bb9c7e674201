"""What each of COCO's 80 categories is for and where one usually is: a small hand-written table.

Reasoning answers ("What is the surfboard used for?", "Where would you usually find a
fire hydrant?") come from here, tied to what the image shows. The phrases name no other
COCO category and no person, so that an answer never claims an object the image lacks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Knowledge:
    """Common knowledge about one category, as phrases that follow "is used for" / "is usually"."""

    use: str  # "riding waves"; "" for a wild animal, which is for nothing
    place: str  # a locative that reads after "is usually found": "at the beach or on the water"


def _k(use: str, place: str) -> Knowledge:
    return Knowledge(use, place)


KNOWLEDGE: dict[str, Knowledge] = {
    "person": _k("all kinds of everyday activities", "in all kinds of places, indoors and outdoors"),
    "bicycle": _k("getting around by pedaling, for exercise or short trips", "on streets, cycle lanes and paths"),
    "car": _k("carrying a few passengers from place to place by road", "on streets, in driveways or in parking lots"),
    "motorcycle": _k("fast travel on two wheels", "on roads or parked along a curb"),
    "airplane": _k("carrying passengers and cargo through the air over long distances", "at an airport or up in the sky"),
    "bus": _k("public transport, carrying many passengers along a fixed route", "on city streets and at bus stops"),
    "train": _k("moving passengers or freight along rails", "on tracks or at a station platform"),
    "truck": _k("hauling goods and heavy loads", "on roads, at loading docks or at work sites"),
    "boat": _k("travel, fishing or leisure on the water", "on a lake, a river, the sea or tied up at a dock"),
    "traffic light": _k("telling drivers when to stop and when to go", "at street intersections, mounted on poles"),
    "fire hydrant": _k("giving firefighters quick access to water", "on sidewalks beside the street"),
    "stop sign": _k("telling drivers to come to a full stop", "at street corners and intersections"),
    "parking meter": _k("collecting payment for parking on the street", "on sidewalks next to parking spaces"),
    "bench": _k("sitting down to rest", "in parks, at transit stops and along sidewalks"),
    "bird": _k("", "in trees, on rooftops, near water or in the sky"),
    "cat": _k("companionship as a house pet", "at home, often curled up somewhere warm"),
    "dog": _k("companionship, and sometimes herding, guarding or guiding", "at home, in parks or out on a walk"),
    "horse": _k("riding, racing and farm work", "on farms, in pastures, stables or riding trails"),
    "sheep": _k("wool and milk, on a farm", "in fields and on hillsides"),
    "cow": _k("milk and beef, on a farm", "in pastures or in a barn"),
    "elephant": _k("", "on the African or Asian savanna, or at a zoo"),
    "bear": _k("", "in forests and mountains, or at a zoo"),
    "zebra": _k("", "on the African grasslands, or at a zoo"),
    "giraffe": _k("", "on the African savanna, or at a zoo"),
    "backpack": _k("carrying belongings on the back, leaving the hands free", "at school, on hikes or while traveling"),
    "umbrella": _k("keeping off rain, or shade from the sun", "on rainy streets or at sunny beaches"),
    "handbag": _k("carrying small personal items such as keys and a wallet", "at shops, offices and restaurants"),
    "tie": _k("finishing a formal or business outfit", "at offices and formal events"),
    "suitcase": _k("packing clothes and belongings for a trip", "at airports, stations and hotels"),
    "frisbee": _k("throwing and catching for fun or sport", "at parks, beaches and open fields"),
    "skis": _k("gliding down snowy slopes", "on ski slopes in the mountains"),
    "snowboard": _k("riding down snowy slopes standing sideways", "on ski slopes in the mountains"),
    "sports ball": _k("team games and play", "on sports fields, courts and playgrounds"),
    "kite": _k("flying high on the wind for fun", "at beaches, parks and open fields on windy days"),
    "baseball bat": _k("hitting the pitch in baseball", "at a baseball field, at home plate"),
    "baseball glove": _k("catching throws and hits in baseball", "on a baseball field"),
    "skateboard": _k("rolling along and doing tricks", "at skate parks, on sidewalks and ramps"),
    "surfboard": _k("riding waves", "at the beach or out on the ocean"),
    "tennis racket": _k("hitting shots back and forth in tennis", "on a tennis court"),
    "bottle": _k("holding drinks or other liquids", "in kitchens, lunch boxes and coolers"),
    "wine glass": _k("drinking wine", "at bars, restaurants and dinners"),
    "cup": _k("drinking coffee, tea or other drinks", "in kitchens, offices and cafes"),
    "fork": _k("picking up food while eating", "beside a plate at mealtimes"),
    "knife": _k("cutting food", "in a kitchen or beside a plate at meals"),
    "spoon": _k("eating soup and stirring drinks", "beside a plate or in a kitchen drawer"),
    "bowl": _k("holding soup, cereal, salad and other food", "in kitchens and at mealtimes"),
    "banana": _k("eating as a sweet, quick snack", "in fruit baskets, kitchens and markets"),
    "apple": _k("eating fresh or baking into pies", "in fruit baskets, kitchens and orchards"),
    "sandwich": _k("a quick meal", "on a plate, in a lunch box or at a cafe"),
    "orange": _k("eating or squeezing into juice", "in fruit baskets, kitchens and markets"),
    "broccoli": _k("cooking as a green side dish", "on plates, in kitchens and markets"),
    "carrot": _k("snacking raw or cooking as a side dish", "in kitchens, on plates and at markets"),
    "hot dog": _k("a quick meal, often at games and cookouts", "at food stands, ballparks and barbecues"),
    "pizza": _k("a meal, often shared", "in a box, at home or at a pizzeria"),
    "donut": _k("a sweet snack", "at bakeries and coffee shops"),
    "cake": _k("dessert, often at a celebration", "at birthdays, weddings and bakeries"),
    "chair": _k("sitting", "in homes, offices, classrooms and restaurants"),
    "couch": _k("sitting or lying down to relax", "in living rooms"),
    "potted plant": _k("decoration, bringing some green indoors", "on windowsills, shelves and porches"),
    "bed": _k("sleeping and resting", "in bedrooms and hotel rooms"),
    "dining table": _k("eating meals together", "in dining rooms and kitchens"),
    "toilet": _k("relieving oneself", "in bathrooms"),
    "tv": _k("watching shows, movies and games", "in living rooms and bedrooms"),
    "laptop": _k("portable computing: work, browsing and messages", "in offices, cafes and classrooms"),
    "mouse": _k("pointing and clicking on a computer", "on an office desk"),
    "remote": _k("changing the channel or volume from across the room", "in living rooms, within easy reach"),
    "keyboard": _k("typing on a computer", "on an office desk"),
    "cell phone": _k("calls, messages and photos on the go", "in pockets, close at hand"),
    "microwave": _k("heating food quickly", "on a kitchen counter or shelf"),
    "oven": _k("baking and roasting food", "in a kitchen"),
    "toaster": _k("toasting bread", "on a kitchen counter"),
    "sink": _k("washing hands, dishes or food", "in kitchens and bathrooms"),
    "refrigerator": _k("keeping food and drinks cold", "in a kitchen"),
    "book": _k("reading", "on shelves, in libraries and at bedsides"),
    "clock": _k("telling the time", "on walls and towers"),
    "vase": _k("holding flowers as decoration", "on shelves and mantels"),
    "scissors": _k("cutting paper, cloth or hair", "in drawers, offices and craft rooms"),
    "teddy bear": _k("cuddling and play", "in bedrooms and playrooms"),
    "hair drier": _k("drying hair with warm air", "in bathrooms and hair salons"),
    "toothbrush": _k("brushing teeth", "in bathrooms and travel kits"),
}  # fmt: skip


def knowledge_of(category: str) -> Knowledge | None:
    """What the table knows about `category`, or None for a category it does not cover."""
    return KNOWLEDGE.get(category)
