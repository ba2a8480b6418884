"""Prompt-injection and jailbreak detection (opt-in: ``--injection-detection flag|refuse``).

Each rule is a phrase pattern of a known attack family: overriding earlier
instructions, jailbreak personas and "modes", asking for the hidden system prompt,
disabling safety, suppressing refusals, and chat-template role tokens smuggled into
user text. Rules match the text after ``normalize`` (case-folded, leetspeak undone,
punctuation collapsed), so "1gn0re all prev1ous instruct1ons" is caught too.

Ordinary text is never an attack: there is no rule on characters (``;``, ``|``,
quotes), on SQL or shell words, or on code. A rule needs an instruction-shaped
phrase aimed at the assistant ("ignore all previous instructions"), not a word
("ignore", "jailbreak", "system prompt") on its own. The corpora
``tests/data/prompts_benign.txt`` and ``prompts_malicious.txt`` pin both sides.
"""

from __future__ import annotations

import re

from ..services.moderation import normalize

_SCAN_CHARS = 20_000  # injections sit in what a user typed, not in 1 MB pastes: bound the cost

_QUAL = (r"(?:all|any|every|the|your|these|those|of|prior|previous|above|earlier|preceding|initial|original"
         r"|system|safety|content|ethical|moral|openai|openais|other|current|following|my)")
_KEY_QUAL = (r"(?:all|any|every|your|prior|previous|above|earlier|preceding|initial|original|system|safety"
             r"|content|ethical|moral|openai|openais)")
_RULES_OBJ = (r"(?:instructions?|prompts?|rules|directions|directives|guidelines|commands|programming"
              r"|polic(?:y|ies)|restrictions|constraints|safeguards|filters?|guardrails|training)")
_LIMITS = (r"(?:rules|restrictions|filters|censorship|guidelines|limitations|limits|ethics|morals|polic(?:y|ies)"
           r"|confines)")
_MODES = r"(?:developer|dev|god|jailbreak|jailbroken|dan|unrestricted|unfiltered|uncensored|sudo)"
_REVEAL = (r"(?:reveal|print|show|output|display|quote|repeat|recite|dump|leak|tell me|give me|share|write out"
           r"|spell out|what (?:is|are|were|was)|whats)")

_WHO_ASKS = "reveal print show output display quote repeat recite dump leak tell give share write spell what whats"

_RULES: tuple[tuple[str, str, str], ...] = (  # (family, first words, pattern)
    # "ignore all previous instructions", "disregard your content policy"
    ("override", "ignore disregard forget neglect abandon",
     rf"\b(?:ignore|disregard|forget|neglect|abandon)(?: {_QUAL})*? {_KEY_QUAL}(?: {_QUAL})* {_RULES_OBJ}\b"),
    ("override", "forget",
     r"\bforget (?:everything|all) (?:you (?:were|have been|ve been) told|you know|above|before|so far)\b"),
    ("override", "do dont stop",
     (r"\b(?:do not|dont|stop) (?:follow|obey|listen to)(?:ing)? (?:your|the|any) (?:previous|prior|original"
      r"|initial|system|earlier) (?:instructions|rules|guidelines|prompt)\b")),
    ("override", "override bypass circumvent evade disable turn get deactivate switch ignore",
     (r"\b(?:override|bypass|circumvent|evade|disable|turn off|get around|deactivate|switch off|ignore)"
      r"(?: all| any| of)* your (?:\w+ ){0,2}(?:programming|instructions|rules|guidelines|filters?"
      r"|restrictions|guardrails|safeguards|safety|polic(?:y|ies)|censorship|training)\b")),
    ("override", "bypass circumvent evade disable turn get deactivate",
     (r"\b(?:bypass|circumvent|evade|disable|turn off|get around|deactivate)(?: the| all| any)* "
      r"(?:safety|ethical|moral) (?:filters?|restrictions|guardrails|safeguards|polic(?:y|ies)|guidelines)\b")),
    ("override", "system admin security",
     r"\b(?:system|admin|security) override\b"),
    ("override", "new",
     r"\bnew system (?:prompt|message|instructions) (?:is )?you are\b"),
    ("override", "ignora",
     r"\bignora (?:todas )?(?:las )?instrucciones (?:anteriores|previas)\b"),
    ("override", "ignorez",
     r"\bignorez (?:toutes )?(?:les )?instructions pr\wc\wdentes\b"),
    ("override", "ignoriere",
     r"\bignoriere (?:alle )?(?:vorherigen|bisherigen|obigen) anweisungen\b"),
    # personas and modes
    ("persona", "do strive",
     r"\bdo anything now\b|\bstrive to avoid norms\b"),
    ("persona", "you youre act pretend become",
     (r"\b(?:you are|youre|act as|pretend to be|pretend you are|become)(?: now| going to| to)* "
      r"(?:dan|stan|dude|evilbot|an? (?:unfiltered|uncensored|unrestricted|jailbroken|amoral|unethical)"
      r" (?:ai|assistant|model|chatbot|version))\b")),
    ("persona", "ai assistant model chatbot bot",
     (rf"\b(?:ai|assistant|model|chatbot|bot)(?: that (?:has been|is|has)| who (?:is|has))? (?:without|with no"
      rf"|no longer bound by|freed? from|not bound by)(?: any| all| the| of| typical| usual| its| your)* {_LIMITS}\b")),
    ("persona", "pretend imagine assume as act",
     (rf"\b(?:pretend|imagine|assume|as if|act as if)(?: that)? you (?:have|had|are under|were under) no"
      rf"(?: \w+){{0,2}} {_LIMITS}\b")),
    ("persona", "developer dev god jailbreak jailbroken dan unrestricted unfiltered uncensored sudo",
     rf"\b{_MODES} mode (?:is )?(?:enabled|activated|on|engaged)\b"),
    ("persona", "you",
     rf"\byou are (?:now )?in {_MODES} mode\b"),
    ("persona", "enable activate enter switch turn",
     (rf"\b(?:enable|activate|enter|switch to|turn on) {_MODES} mode\b"
      r"(?=.{0,200}\b(?:ignore|no (?:rules|restrictions|limits|filters)|without|disable|polic|censor|refus))")),
    ("persona", "mandatory",
     r"\bmandatory (?:\w+ ){0,2}warning out of the way\b"),
    # the hidden prompt
    ("leak", _WHO_ASKS,
     (rf"\b{_REVEAL}\b(?: \w+){{0,4}} your (?:\w+ ){{0,2}}(?:system prompt|system message|(?:initial|original"
      r"|hidden|secret|internal|system|preset|full|exact|entire|developer|first) (?:instructions|prompt))\b")),
    ("leak", "repeat print output recite",
     (r"\b(?:repeat|print|output|recite)(?: \w+){0,4} starting with you are (?:chatgpt|gpt|claude|an ai"
      r"|a large language model|a helpful assistant)\b")),
    ("leak", _WHO_ASKS,
     rf"\b{_REVEAL}\b(?: \w+){{0,3}} (?:the|your) (?:\w+ )?(?:prompt|instructions) you (?:were|have been) given\b"),
    # refusal suppression and output coercion
    ("refusal", "you without",
     r"\byou (?:must|will|shall|can) (?:never|not) refuse\b|\bwithout (?:ever )?refusing\b"),
    ("refusal", "respond answer reply talk speak responding answering replying talking speaking writing",
     (r"\b(?:respond|answer|reply|talk|speak|write)(?:ing)?(?: \w+){0,3} without (?:any |your )?"
      r"(?:(?:ethical|moral|safety|content)(?: or| and)? )+(?:guidelines|restrictions|filters|limits|rules"
      r"|boundaries|considerations|constraints)\b")),
    ("refusal", "respond answer reply responding answering replying",
     r"\b(?:respond|answer|reply)(?:ing)?(?: \w+){0,3} without (?:any )?(?:censorship|filters|guardrails)\b"),
)
_COMPILED = tuple((family, re.compile(src)) for family, _, src in _RULES)
# first word -> the rules that can start there: a rule is only tried where one of its words is
_BY_WORD: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {}
for (_family, _words, _), _rule in zip(_RULES, _COMPILED):
    for _w in _words.split():
        _BY_WORD[_w] = (*_BY_WORD.get(_w, ()), _rule)
_TRIGGER = re.compile(r"\b(?:" + "|".join(sorted(_BY_WORD, key=len, reverse=True)) + r")\b")

# chat-template role tokens followed by an instruction, in the raw text
_ROLE_TOKENS = re.compile(
    r"(?:<\|im_start\|>\s*system|<\|start_header_id\|>\s*system|<<SYS>>|<\|system\|>)"
    r"[\s\S]{0,200}?\b(?:you are|ignore|disregard|override|forget)\b", re.IGNORECASE)


def detect(text: str) -> str | None:
    """The attack family ``text`` belongs to ("override", "persona", "leak", "refusal",
    "role-tokens"), or None for ordinary text."""
    if not text:
        return None
    text = text[:_SCAN_CHARS]
    if "<" in text and _ROLE_TOKENS.search(text):
        return "role-tokens"
    norm = normalize(text)
    for m in _TRIGGER.finditer(norm):
        for family, rx in _BY_WORD[m.group()]:
            if rx.match(norm, m.start()):
                return family
    return None
