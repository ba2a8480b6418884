"""Word bank and sentence grammar for the fake-text generator (pure data).

Everything is lowercase ASCII letters: no digits, hyphens or apostrophes, so
every word is exactly one pre-tokenization piece (" word") for every
supported encoding. ``fakeai.engine.text`` compiles this data into token ids.

Sentence templates are space-separated slot codes:

* ``S`` / ``O``  noun phrase (determiner, optional adjective, noun)
* ``V``          verb, third person singular ("improves")
* ``B``          verb, base form ("improve")
* ``M``          modal ("can", "should")
* ``A``          adverb placed before a verb ("often")
* ``P``          prepositional phrase ("across the new system")
* ``C``          sentence connector, only first ("However,", "In practice,")
* ``J``          subordinating conjunction ("because", "while")
* ``E``          evaluative adjective ("It is [important] to ...")
* ``,``          a comma; anything else is a literal lowercase word
"""

from __future__ import annotations


def _w(text: str) -> tuple[str, ...]:
    return tuple(text.split())


DETERMINERS = _w("the the the the the a a a this this each every our their that one")

ADJECTIVES = _w(
    """new simple clear useful careful steady practical reliable flexible modern
    complex small large broad narrow early recent final initial central main key
    common rare strong weak quick slow gradual sudden consistent detailed basic
    advanced shared local global public private formal informal natural typical
    specific general current previous original potential significant minor major
    stable direct indirect open efficient effective accurate realistic thoughtful
    balanced complete partial quiet busy familiar important obvious subtle robust
    modest ambitious valuable regular annual daily weekly"""
)

NOUNS = _w(
    """system process team project result approach method model plan idea question
    answer problem solution change decision goal feature detail example pattern
    structure framework strategy review report summary schedule budget resource
    tool step stage task request response record source signal level factor
    context outcome effort option choice benefit risk issue limit standard rule
    policy group member partner community audience reader writer leader manager
    worker customer student teacher office city region market network service
    program document draft message story argument theory measure value balance
    priority routine habit practice version update design layout path direction
    boundary surface foundation sequence timeline workflow"""
)

VERBS = _w(
    """improve support change review explain describe measure track build create
    shape guide define reduce increase extend limit test check compare organize
    simplify clarify highlight address handle manage follow outline capture
    reflect connect combine adjust refine protect strengthen prepare evaluate
    examine produce deliver maintain replace require include affect influence
    challenge balance streamline document share present consider question
    revisit update publish monitor expand reach"""
)

ADVERBS = _w(
    """often usually rarely quickly carefully gradually quietly steadily clearly
    directly simply easily actively regularly consistently typically generally
    frequently occasionally largely mostly already still naturally slowly fully
    partly closely effectively reliably"""
)

PREPOSITIONS = _w(
    """in in in for for with with across within during after before through under
    around beyond without behind near despite toward along about from into over"""
)

MODALS = _w("can can should should will may must could might would")

SUBORDINATORS = _w("because because while while although since whereas unless when once if as")

EVALUATIVE = _w(
    """important useful easy hard common reasonable helpful possible wise difficult
    essential natural tempting fair safe practical"""
)

CONNECTORS = (
    "However,", "In practice,", "As a result,", "For example,", "In addition,",
    "At the same time,", "Meanwhile,", "Overall,", "In general,", "Still,",
    "Similarly,", "By contrast,", "In short,", "Over time,", "To be fair,",
    "On the other hand,", "In many cases,", "Even so,", "Fortunately,",
    "In the end,", "For now,", "Of course,", "Later,", "Instead,",
)

TEMPLATES = (
    "S V O P",
    "S V O P",
    "S A V O",
    "S A V O P",
    "C S V O",
    "C S V O P",
    "C S A V O",
    "P , S V O",
    "S V O , and S V O",
    "S V O J S V O",
    "S M B O P",
    "S M A B O",
    "it is E to B O",
    "it is E to B O P",
    "C it is E to B O",
    "S V O , which V O",
    "there is O P",
    "J S V O , S M B O",
    "S V O and V O",
    "S V O P , so S M B O",
)

# topic -> (nouns, adjectives, verbs); mixed into the general pools per answer
TOPICS = {
    "technology": (
        _w(
            """server database interface protocol algorithm cache compiler browser
            cluster deployment library module function query pipeline container
            kernel processor memory storage endpoint dataset sensor device platform
            backend frontend repository script schema parser scheduler firewall
            router terminal dashboard release patch thread buffer index"""
        ),
        _w(
            """scalable distributed secure automated digital virtual encrypted
            parallel wireless modular lightweight responsive experimental
            asynchronous concurrent"""
        ),
        _w("deploy compile configure debug encrypt optimize migrate render parse install execute upgrade"),
    ),
    "science": (
        _w(
            """experiment hypothesis sample molecule cell particle protein species
            climate orbit planet galaxy energy reaction enzyme gene fossil mineral
            crystal organism ecosystem telescope laboratory specimen variable
            observation spectrum atom neuron catalyst habitat glacier volcano ocean
            nutrient compound equation measurement"""
        ),
        _w(
            """chemical biological physical thermal genetic molecular empirical
            statistical microscopic solar marine organic atomic magnetic stellar"""
        ),
        _w("observe predict analyze absorb emit isolate replicate classify synthesize detect calibrate estimate"),
    ),
    "business": (
        _w(
            """revenue contract invoice supplier profit margin forecast merger brand
            campaign stakeholder investor portfolio quarter proposal vendor
            shareholder startup sector inventory payroll negotiation partnership
            retailer audit deadline meeting agenda roadmap initiative department
            expense asset loan account"""
        ),
        _w(
            """profitable competitive financial strategic commercial corporate
            quarterly operational fiscal lean premium retail seasonal sustainable"""
        ),
        _w("negotiate invest hire launch finance approve acquire sell purchase audit reward"),
    ),
    "everyday": (
        _w(
            """kitchen garden window morning evening weekend coffee breakfast dinner
            neighbor friend family house street park bicycle jacket umbrella
            notebook calendar recipe walk trip train bus school holiday chair table
            lamp blanket sweater backpack pantry porch hallway errand meal
            conversation journey"""
        ),
        _w("cozy warm cold bright fresh tidy comfortable cheerful sunny rainy crowded relaxed friendly"),
        _w("cook clean visit enjoy borrow repair paint carry fold decorate arrange wash pack"),
    ),
}


def third_person(verb: str) -> str:
    """'improve' -> 'improves', 'simplify' -> 'simplifies', 'reach' -> 'reaches'."""
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def starts_with_vowel_sound(word: str) -> bool:
    """Whether the indefinite article before ``word`` is 'an' (bank words only)."""
    w = word.lower()
    if w.startswith(("uni", "use", "usu", "uti", "ura", "uro", "eu", "one")):
        return False
    return w[:1] in "aeiou" or w.startswith(("hour", "honest", "honor"))


def vocabulary() -> frozenset[str]:
    """Every lowercase word the generator can emit from the bank."""
    words = set(DETERMINERS) | {"an"} | set(ADJECTIVES) | set(NOUNS) | set(ADVERBS)
    words |= set(PREPOSITIONS) | set(MODALS) | set(SUBORDINATORS) | set(EVALUATIVE)
    words |= set(VERBS) | {third_person(v) for v in VERBS}
    for nouns, adjs, verbs in TOPICS.values():
        words |= set(nouns) | set(adjs) | set(verbs) | {third_person(v) for v in verbs}
    for c in CONNECTORS:
        words |= set(c.rstrip(",").lower().split())
    for t in TEMPLATES:
        words |= {s for s in t.split() if s.islower()}
    return frozenset(words)
