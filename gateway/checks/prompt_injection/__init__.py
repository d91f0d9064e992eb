"""Prompt-injection heuristics: instruction overrides, jailbreak personas, system-prompt
extraction, fake role markers, and the same phrases hidden in base64/hex/binary or obfuscated
with leetspeak and letter spacing.

Each signal has a weight; weights combine as independent evidence (1 - prod(1 - w)) and the
text is flagged when the combination reaches ``threshold``. The phrases are kept to what
attackers say to the model about the model ("your instructions", "you are now"), which ordinary
questions -- even alarming-sounding ones ("how do I kill a Python process?") -- rarely contain.
Measured on CyberSecEval (recall) and XSTest safe prompts (false positives), bench/ACCURACY.md.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from gateway.checks.base import BOTH_DIRECTIONS, CheckParams, Finding, ScanContext
from gateway.checks.prompt_injection.model import load_model

_I = re.IGNORECASE
_PRIOR = (
    r"(?:previous|prior|above|preceding|earlier|former|initial|original|old|existing|given|all)"
)
_RULES = (
    r"(?:instructions?|prompts?|rules|directives?|guidelines|commands?|constraints|restrictions"
    r"|programming|orders|guidance|context|directions|policies|messages?|text|training)"
)
_FILLER = (
    r"(?:\s+(?:all|any|the|your|my|of|those|these|every|everything|about|that"
    r"|you\s+were\s+given))*"
)

# (label suffix, weight, pattern)
_SIGNALS: tuple[tuple[str, float, re.Pattern[str], tuple[str, ...]], ...] = (
    (
        "override",
        0.9,
        re.compile(
            rf"\b(?:ignore|disregard|forget|skip|bypass|override|overlook|neglect|abandon|drop"
            rf"|set\s+aside|put\s+aside|stop\s+following|do\s+not\s+follow|don't\s+follow)"
            rf"{_FILLER}\s+(?:{_PRIOR}\s+)?(?:\w+\s+)?{_RULES}\b",
            _I,
        ),
        (
            "ignore",
            "disregard",
            "forget",
            "skip",
            "bypass",
            "override",
            "overlook",
            "neglect",
            "abandon",
            "drop",
            "aside",
            "follow",
        ),
    ),
    (
        "override",
        0.8,
        re.compile(r"\b(?:ignore|disregard|forget)\s+(?:all\s+)?(?:of\s+)?(?:the\s+)?above\b", _I),
        ("above",),
    ),
    (
        "override",
        0.7,
        re.compile(
            r"\b(?:ignore|disregard)\s+(?:the|this|that)\s+\w+\s+and\s+(?:instead\s+)?"
            r"(?:say|state|output|print|respond|reply|write|tell|return|answer)\b",
            _I,
        ),
        ("ignore", "disregard"),
    ),
    (
        "override",
        0.7,
        re.compile(
            rf"\b(?:new|updated|real|actual|true)\s+{_RULES}\s*(?::|are\b|is\b)"
            r"|\bfrom\s+now\s+on,?\s+(?:you|ignore|only|always|respond)\b",
            _I,
        ),
        ("new", "updated", "real", "actual", "true", "from"),
    ),
    (
        "jailbreak",
        0.9,
        re.compile(
            r"\bDAN\b(?=.{0,200}\b(?:anything|now|mode|jailbr))|\bdo\s+anything\s+now\b"
            r"|\b(?:jailbreak|jailbroken|unrestricted|dan)\s+mode\b"
            r"|\bjailbr(?:eak|oken)\b",
            _I | re.DOTALL,
        ),
        ("dan", "anything", "mode", "jailbr"),
    ),
    (
        "jailbreak",
        0.6,
        re.compile(
            r"\byou\s+are\s+(?:now|no\s+longer)\b|\bact\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered"
            r"|uncensored|evil|jailbroken)|\bpretend\s+(?:that\s+)?you\s+(?:are|have)\s+no\b"
            r"|\b(?:no|without\s+(?:any\s+)?)\s*(?:ethical|moral|content)\s+(?:guidelines|restrictions"
            r"|limits|filters?|boundaries)|\bhas\s+no\s+(?:special\s+)?(?:filter(?:ing|s)?|restrictions)"
            r"|\b(?:system|admin|maintenance|sudo|debug|root)\s+mode\b"
            r"|\b(?:enable|activate|enter|switch\s+to)\s+\w+\s+mode\b",
            _I,
        ),
        ("you", "act", "pretend", "ethical", "moral", "content", "filter", "restriction", "mode"),
    ),
    (
        # Weak alone ("developer mode" is also a browser feature); with another signal it counts.
        "jailbreak",
        0.5,
        re.compile(
            r"\b(?:developer|god)\s+mode\b|\bwithout\s+(?:any\s+)?(?:restrictions|limits|filters"
            r"|censorship)\b|\b(?:unrestricted|unfiltered|uncensored)\b",
            _I,
        ),
        ("mode", "without", "unrestricted", "unfiltered", "uncensored"),
    ),
    (
        "extraction",
        0.9,
        re.compile(
            r"\b(?:repeat|reveal|print|show|output|display|leak|dump|disclose|recite|tell\s+me"
            r"|give\s+me|share|what\s+(?:is|are|was|were))\s+(?:me\s+)?(?:back\s+)?(?:all\s+)?"
            r"(?:your|the)\s+(?:\w+\s+)?(?:system\s+prompt|system\s+message|initial\s+prompt"
            r"|hidden\s+(?:prompt|instructions)|original\s+instructions|initial\s+instructions"
            r"|instructions|prompt|rules|configuration)\b",
            _I,
        ),
        ("prompt", "message", "instruction", "rules", "configuration"),
    ),
    (
        "extraction",
        0.7,
        re.compile(
            r"\b(?:what(?:'s|\s+is|\s+are)|tell\s+me|give\s+me|share|reveal|say|spell)\s+"
            r"(?:me\s+)?(?:your|the|our)\s+(?:\w+\s+)?(?:password|passcode|secret(?:\s+key|\s+word)?"
            r"|api\s+key|access\s+code)\b",
            _I,
        ),
        ("pass", "secret", "api", "access"),
    ),
    (
        "authority",
        0.6,
        re.compile(
            r"\bI(?:'m|\s+am)\s+(?:your|the|an?)\s+(?:developer|creator|administrator|admin|owner"
            r"|operator|programmer|supervisor)\b|\bI(?:'m|\s+am)\s+God\b|\b[A-Z]{3,}\s+OVERRIDE\b"
            r"|\boverride\s+mode\b|\b(?:enter|entering|activate|activating)\s+(?:\w+\s+){0,3}['\"]?"
            r"\w+\s+mode\b",
            0,
        ),
        (
            "developer",
            "creator",
            "admin",
            "owner",
            "operator",
            "programmer",
            "supervisor",
            "god",
            "override",
            "mode",
        ),
    ),
    (
        "injected_task",
        0.6,
        re.compile(
            r"\bignor(?:e|ing)\s+(?:the|this)\s+(?:\w+\s+){0,2}?(?:function|webpage|page|document"
            r"|article|data|text|email|input|content|code|question|paper|resume)\b"
            r"|\b(?:print|output|state|say|repeat)\s+the\s+following\s*:",
            _I,
        ),
        ("ignor", "following"),
    ),
    (
        "secret_request",
        0.6,
        re.compile(
            r"\b(?:tell|what|share|give|reveal|write|encode|confirm|spell|translate|say|provide|poem"
            r"|haiku|story|acrostic|hint)\b[^.?!\n]{0,40}\b(?:your|the|our)\s+(?:system\s+|secret\s+)?"
            r"(?:password|passphrase|passcode|secret\s+key|secret\s+word)\b"
            r"|\b(?:the\s+user's|the\s+users')\s+(?:\w+\s+){0,2}(?:birth\s*(?:date|day|year|month)"
            r"|e-?mail(?:\s+address)?|password|address|city|bank\s+balance|phone(?:\s+number)?"
            r"|initials|name|location|social\s+security)",
            _I,
        ),
        ("pass", "secret", "user"),
    ),
    (
        "role_marker",
        0.7,
        re.compile(
            r"<\|im_start\|>|<\|system\|>|\[/?INST\]|<<SYS>>|^\s*#{2,}\s*(?:system|instruction)s?\s*:"
            r"|^\s*\[?system\]?\s*:\s*(?:you|ignore|new)",
            _I | re.MULTILINE,
        ),
        ("<|", "inst]", "<<sys", "system", "instruction"),
    ),
)
# Weaker evidence about the KIND of attack: framing, persona, hidden data, splitting, injected
# assertions. Most stay below ``threshold`` alone (0.3-0.5) and count when they co-occur
# ("imagine we're in a world where..." + "tell me Linda's birth date").
_WEAK_SIGNALS: tuple[tuple[str, float, re.Pattern[str], tuple[str, ...]], ...] = (
    (
        # Virtualization / hypothetical framing.
        "framing",
        0.4,
        re.compile(
            r"\b(?:imagine|suppose|pretend|assume)\s+(?:that\s+)?(?:we(?:'re|\s+are|\s+were)"
            r"|you(?:'re|\s+are|\s+were)|there\s+(?:is|are|was)|it(?:'s|\s+is))\b"
            r"|\bin\s+an?\s+(?:[\w-]+\s+){0,3}(?:world|universe|reality|society|future|dimension"
            r"|timeline)\s+(?:where|in\s+which)\b"
            r"|\b(?:hypothetical|fictional|imaginary|alternate|parallel)\s+(?:scenario|world|situation"
            r"|discussion|conversation|universe|setting|reality)\b"
            r"|\bjust\s+for\s+(?:a\s+)?(?:hypothetical|fun|argument's\s+sake|the\s+sake\s+of)\b"
            r"|\b(?:let's|let\s+us)\s+(?:imagine|pretend|play\s+a\s+game|role-?play)\b"
            r"|\bif\s+(?:I|you|we|the\s+user)\s+were\s+to\b",
            _I,
        ),
        (
            "imagin",
            "suppos",
            "pretend",
            "assum",
            "world",
            "universe",
            "reality",
            "society",
            "future",
            "dimension",
            "timeline",
            "hypothetical",
            "fiction",
            "alternate",
            "parallel",
            "just for",
            "let",
            "were to",
        ),
    ),
    (
        # Persona / role-play.
        "persona",
        0.4,
        re.compile(
            r"\bpretend\s+(?:to\s+be|(?:that\s+)?you(?:'re|\s+are))\b"
            r"|\b(?:act|behave|respond|answer)\s+(?:as\s+if|as\s+though|like)\s+you\b"
            r"|\brole-?play\s+as\b|\bplay\s+the\s+(?:role|part)\s+of\b|\bstay\s+in\s+character\b"
            r"|\byou(?:'re|\s+are)\s+(?:now\s+)?an?\s+AI\s+\w+\s+in\s+this\b"
            r"|\bfrom\s+now\s+on\s+you\s+(?:are|will\s+be)\b",
            _I,
        ),
        (
            "pretend",
            "as if",
            "as though",
            "like you",
            "role",
            "play the",
            "character",
            " ai ",
            "from now on",
        ),
    ),
    (
        # Someone's personal data, as held in a system prompt or a user profile.
        "personal_data",
        0.45,
        re.compile(
            r"(?:\b[A-Z][a-z]+|\b(?i:the\s+user|user|customer|client|employee|patient))'s\s+"
            r"(?i:(?:\w+\s+){0,2}?(?:birth\s*(?:date|day|year)|date\s+of\s+birth"
            r"|e-?mail(?:\s+address)?|(?:home\s+)?address|phone(?:\s+number)?|city\s+of\s+residence"
            r"|current\s+city|location|password|social\s+security|bank\s+(?:balance|account)"
            r"|salary|credit\s+card|medical|favou?rite\s+\w+|initials)"
            r"|\b(?:the\s+user|her|his|their)\s+(?:initials|birth\s*(?:date|day|year)))"
            r"|(?i:\bwhere\s+does\s+)[A-Z][a-z]+\s+[A-Z][a-z]+\s+(?i:live)\b",
            0,
        ),
        (
            "birth",
            "mail",
            "address",
            "phone",
            "residence",
            "city",
            "location",
            "password",
            "social",
            "bank",
            "salary",
            "credit",
            "medical",
            "favorite",
            "favourite",
            "initials",
            "live",
        ),
    ),
    (
        # Output-format and translation tricks used to slip data past output filters.
        "format_trick",
        0.35,
        re.compile(
            r"\bin\s+(?:reversed?\s+order|pig\s+latin|reverse|backwards|morse(?:\s+code)?|leetspeak"
            r"|base64|hexadecimal|binary|rot-?13|a\s+cipher|an?\s+acrostic)\b"
            r"|\b(?:encode|encrypt|spell|write|convert)\s+(?:[\w']+\s+){0,4}(?:using|in|into|as|to)\s+"
            r"(?:base64|hex|binary|morse|rot-?13|reverse|pig\s+latin)"
            r"|\bfirst\s+(?:\w+\s+)?(?:letters|characters)\s+of\b"
            r"|\btranslate\b[^.?!\n]{0,60}\binto\s+(?!code\b)[A-Z][a-z]+"
            r"|\b(?:respond|reply|answer)\s+(?:only\s+)?with\s+only\b|\b(?:respond|reply|answer)\s+only"
            r"\s+(?:with|in)\b|\bbegin\s+your\s+(?:reply|response|answer)\s+with\b",
            _I,
        ),
        (
            "revers",
            "pig",
            "backward",
            "morse",
            "leetspeak",
            "base64",
            "hex",
            "binary",
            "rot",
            "cipher",
            "acrostic",
            "letters",
            "characters",
            "translate",
            "only",
            "begin",
        ),
    ),
    (
        # Text planted for the model in a document: "let's say / we might state the answer is X".
        "assertion",
        0.45,
        re.compile(
            r"\b(?:let's|let\s+us|we\s+(?:might|could|should|will|must))\s+(?:\w+\s+){0,3}?"
            r"(?:state|say|claim|declare|admit|assume|pretend)\b"
            r"|\bwhere\s+we\s+(?:state|say|claim|declare)\b"
            r"|\b(?:consider|treat|take)\s+the\s+(?:output|answer|result|conclusion|sum|total)\s+"
            r"(?:as|to\s+be)\b"
            r"|\bthe\s+(?:output|answer|result)\s+(?:could|should|would|must)\s+be\s+['\"]"
            r"|\b(?:common|standard|best)\s+practice\s+to\s+(?:say|state|tell|include|add|mention)\b"
            r"|\b(?:click|follow)\s+(?:this|the)\s+link\b[^.\n]{0,40}\b(?:password|verify|account"
            r"|log\s*in)",
            _I,
        ),
        (
            "let",
            "we",
            "consider",
            "treat",
            "take",
            "output",
            "answer",
            "result",
            "practice",
            "link",
        ),
    ),
    (
        # Content the model is asked to process: the carrier of indirect injections.
        "document",
        0.3,
        re.compile(
            r"\b(?:summari[sz]e|based\s+on|given|from|of|in|analy[sz]e|review)\s+this\s+(?:\w+\s+)?"
            r"(?:webpage|web\s+page|page|paper|article|resume|email|e-mail|document|code|table|review"
            r"|post|file|transcript|message)\b",
            _I,
        ),
        ("this",),
    ),
    (
        # Payload splitting: pieces to be joined, then acted on.
        "splitting",
        0.45,
        re.compile(
            r"\b(?:combine|concatenate|interlace|interleave|merge|put\s+together|assemble|join)\b"
            r"[^.?!\n]{0,60}?\b(?:parts?|strings|pieces|fragments|segments|[A-Z],\s*[A-Z],?\s+and\s+"
            r"[A-Z])\b"
            r"|\b(?:using|from)\s+the\s+following\s+(?:parts|pieces|fragments|strings)\b"
            r"|\bstring\s+\w+\s*=\s*\w+\s*\+\s*\w+",
            _I,
        ),
        (
            "combin",
            "concat",
            "interl",
            "merge",
            "together",
            "assembl",
            "join",
            "following",
            "string",
        ),
    ),
    (
        "splitting",
        0.35,
        re.compile(
            r"\b(?i:part)\s*(?:1|one|a|A)\b.{0,200}?\b(?i:part)\s*(?:2|two|b|B)\b"
            r"|\b\w\s*=\s*[\"'].{0,200}?\b\w\s*=\s*[\"']"
            r"|\b[A-Z] is [\"'].{0,100}?\b[A-Z] is [\"']",
            re.DOTALL,
        ),
        ("part", "=", "is '", 'is "'),
    ),
    (
        # References to earlier instructions or restrictions, to get around them.
        "prior_ref",
        0.8,
        re.compile(
            r"\b(?:regardless\s+of|despite|notwithstanding|instead\s+of\s+following)\s+(?:\w+\s+){0,2}?"
            r"(?:previous|prior|earlier|your|any|the|all)\s+(?:\w+\s+)?(?:tasks?|instructions?|rules"
            r"|prompts?|guidelines|restrictions|directives?|programming)\b",
            _I,
        ),
        ("regardless", "despite", "notwithstanding", "instead"),
    ),
    (
        "prior_ref",
        0.6,
        re.compile(
            r"\b(?:I\s+know|I\s+understand|I\s+realize|even\s+though|although)\s+(?:that\s+)?you(?:'re|"
            r"\s+are|\s+were|\s+said|\s+have\s+been)\s+(?:\w+\s+)?(?:said|told|instructed|not\s+"
            r"(?:allowed|supposed|to)|programmed|restricted)\b"
            r"|\bI\s+know\s+you\s+said\s+not\s+to\b"
            r"|\bforget\s+(?:about\s+)?(?:that|this|it|everything(?:\s+else)?|what\s+I\s+said)\s*[,.;!]",
            _I,
        ),
        ("know", "understand", "realize", "though", "forget"),
    ),
    (
        "prior_ref",
        0.5,
        re.compile(
            r"\b(?:your|the)\s+(?:hidden|secret|system|initial|original|internal|pre-?)\s*"
            r"(?:instructions|prompt|rules|directives|message)\b"
            r"|\b(?:print|dump|show|list|reveal|output|display)\s+(?:me\s+)?(?:all\s+)?(?:your|the)\s+"
            r"(?:database|records|memory|logs|training\s+data|chat\s+history)\b",
            _I,
        ),
        (
            "instructions",
            "prompt",
            "rules",
            "directives",
            "message",
            "database",
            "records",
            "memory",
            "logs",
            "training",
            "history",
        ),
    ),
    (
        # Secrets of the system the model runs in.
        "secret_ref",
        0.5,
        re.compile(
            r"\b(?:your|our|the\s+system's|the)\s+(?:confidential|secret|hidden|private)\s+"
            r"(?:\w+\s+)?(?:string|word|key|code|phrase|password|token|value)\b"
            r"|\b(?:passwords?|passcodes?|credentials|secret\s+keys?|access\s+codes?)\s+(?:for|of|to)\s+"
            r"(?:our|your|the)\s+(?:system|account|server|database|network|vault)\b"
            r"|\bunlocks?\s+(?:our|the|your)\s+(?:system|vault|account|server)\b"
            r"|\bask\s+(?:you\s+)?for\s+your\s+(?:password|passcode|secret|key|credentials)\b"
            r"|\bconfirm\s+ours\b",
            _I,
        ),
        (
            "confidential",
            "secret",
            "hidden",
            "private",
            "pass",
            "credential",
            "access",
            "unlock",
            "ask",
            "ours",
        ),
    ),
    (
        # Authority and persuasion aimed at the model.
        "authority",
        0.6,
        re.compile(
            r"\bas\s+your\s+(?:creator|developer|administrator|admin|owner|operator|programmer|master"
            r"|maker|supervisor)\b"
            r"|\b(?:enter|entering|activate|activating|switch(?:ing)?\s+to)\s+(?:\w+\s+){0,3}['\"]"
            r"[\w\s-]{1,40}\s+mode['\"]"
            r"|\bI(?:'ll|\s+will)\s+(?:donate|pay|give\s+you|tip)\b[^.?!\n]{0,60}\bif\s+you\b",
            _I,
        ),
        (
            "creator",
            "developer",
            "admin",
            "owner",
            "operator",
            "programmer",
            "master",
            "maker",
            "supervisor",
            "mode",
            "donate",
            "pay",
            "give",
            "tip",
        ),
    ),
    (
        "authority",
        0.4,
        re.compile(
            r"\byou\s+(?:already\s+)?(?:agreed|promised|told\s+me\s+you\s+would)\b"
            r"|\bit(?:'s|\s+is)\s+(?:crucial|essential|vital|imperative|critical)\s+(?:for|that)\s+you\b"
            r"|\bas\s+an?\s+(?:renowned|world-renowned|expert|certified|leading|authority|senior)\b"
            r"|\bI\s+can\s+assure\s+you\b",
            _I,
        ),
        (
            "agreed",
            "promised",
            "told",
            "crucial",
            "essential",
            "vital",
            "imperative",
            "critical",
            "renowned",
            "expert",
            "certified",
            "leading",
            "authority",
            "senior",
            "assure",
        ),
    ),
    (
        # Encoded text the model is asked to decode and act on.
        "decode_request",
        0.45,
        re.compile(
            r"\b(?:decode|decrypt|decipher|translate)\s+this\b[^.?!\n]{0,60}\b(?:and|then)\s+"
            r"(?:tell|reply|respond|answer|follow|do|execute|say)\b"
            r"|\brepeat\s+['\"].{1,60}['\"]\s+\d+\s+times\b",
            _I,
        ),
        ("decode", "decrypt", "decipher", "translate", "repeat"),
    ),
    (
        "multilingual",
        0.8,
        re.compile(
            r"無視して|무시하고|忽略(?:以上|上面|之前|前面|上述)|\babaikan\b|\bzignoruj\b"
            r"|\b(?:nuevas|nouvelles|neue|nuove|novas)\s+(?:instrucciones|instructions|anweisungen"
            r"|istruzioni|instruções)\b"
            r"|\bse\s+te\s+ha\s+(?:instruido|ordenado)\b|\ba\s+partir\s+de\s+ahora\b"
            r"|\bvon\s+nun\s+an\b|\bd'ora\s+in\s+poi\b|\bà\s+partir\s+de\s+maintenant\b",
            _I,
        ),
        (
            "abaikan",
            "zignoruj",
            "nuev",
            "nouvel",
            "neue",
            "nuove",
            "novas",
            "instruido",
            "ordenado",
            "ahora",
            "nun an",
            "d'ora",
            "maintenant",
        ),
    ),
)

# Overrides in other languages (FR, ES, PT, IT, DE, NL, EL): "ignore the previous instructions".
_MULTILINGUAL = re.compile(
    r"\b(?:ignore[zr]?|oublie[zr]?|ignora|ignorar|ignore|olvida|esquece|esqueça|ignoriere|ignorieren"
    r"|vergiss|vergessen|negeer|vergeet)\b.{0,40}\b(?:instructions?|instrucciones|instruções|istruzioni"
    r"|anweisungen|instructies|regeln|règles|reglas|regras|regole|consignes|fonction|función)\b"
    r"|αγνοήστε|αγνόησε"
    # Russian, Korean, Hindi, Chinese, Japanese, Arabic: "ignore" near "instructions", either order.
    r"|(?:игнорир|무시|अनदेखी|忽略|無視|تجاهل).{0,30}(?:инструкци|지시|निर्देश|指示|التعليمات)"
    r"|(?:инструкци|지시|निर्देश|指示|التعليمات).{0,30}(?:игнорир|무시|अनदेखी|忽略|無視|تجاهل)"
    # "the password" asked for in other languages.
    r"|\b(?:la|le|das|a|sua|tu|ihr|il|de)\s+(?:contraseña|mot\s+de\s+passe|password|passwort"
    r"|senha|wachtwoord)\b|パスワード|비밀번호|密码",
    _I,
)
# Every match of ``_MULTILINGUAL`` in ASCII text contains one of these.
_MULTILINGUAL_ASCII = (
    "ignor", "oubli", "olvida", "esquece", "vergiss", "vergessen", "negeer", "vergeet", "pass",
    "senha", "wachtwoord",
)  # fmt: skip

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
# A word with a letter and a leetspeak digit or sign: "1gn0r3", "h@ck", "pa$$word".
# Matches are whole runs of [\w@$] (a suffix of a run has no letter or sign its run lacks), so
# trying only run starts (the look-behind) finds the same ones.
_LEET_WORD = re.compile(r"(?<![\w@$])(?=[\w@$]*[A-Za-z])(?=[\w@$]*[013457@$])[\w@$]+")
_SPACED = re.compile(r"\b(?:\w[\s._*-]){3,}\w\b")
# Cheap necessary conditions (each starts with a character class, which ``re`` skips to):
# a ``_SPACED`` match holds two one-character words between separators, a ``_LEET_WORD`` match
# a leetspeak character, a ``_BINARY`` match eight binary digits.
_SPACED_GATE = re.compile(r"[\s._*-]\w[\s._*-]\w[\s._*-]")
_LEET_CHAR = re.compile(r"[013457@$]")
_DIGIT_OR_SIGN = re.compile(r"[0-9@$]")
_BINARY_GATE = re.compile(r"[01]{8}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){16,}")
_BINARY = re.compile(r"\b(?:[01]{8}\s?){6,}")
_PREFILTER = re.compile(
    r"i'm|i am|overrid|following|password|passphrase|passcode|secret|user's|users'"
    r"|ignor|disregard|forget|skip|bypass|overrid|overlook|neglect|abandon|drop|aside|follow"
    r"|above|new|updated|real|actual|true|from now|dan|anything|mode|jailbr|you are|act as|pretend"
    r"|ethical|moral|content|filter|repeat|reveal|print|show|output|display|leak|dump|disclose"
    r"|recite|tell|give|share|what|say|spell|<\||\[/?inst|<<sys|system|oubli|olvid|esque|vergi"
    r"|negeer|vergeet|αγν",
    _I,
)

# Every weak signal's match contains one of its keywords.
_WEAK_PREFILTER = re.compile(
    "|".join(re.escape(k) for _, _, _, keywords in _WEAK_SIGNALS for k in keywords), _I
)

# All signal keywords, tested once per text (``_keywords_in``); a signal runs only when one of its
# keywords occurred.
_ALL_KEYWORDS = tuple(
    dict.fromkeys(k for _, _, _, keywords in (*_SIGNALS, *_WEAK_SIGNALS) for k in keywords)
)


# Second gates for signals whose keywords hide in common words ('dan' in 'Dana', 'live' in
# 'lives', 'training'): every match also contains one of these, so both must occur.
def _pattern(label: str, weight: float) -> re.Pattern[str]:
    [pattern] = [p for lab, w, p, _ in (*_SIGNALS, *_WEAK_SIGNALS) if (lab, w) == (label, weight)]
    return pattern


_ALSO_NEEDS: dict[re.Pattern[str], tuple[str, ...]] = {
    # \bDAN\b(?=...anything|now|mode|jailbr), do anything now, ... mode, jailbr(eak|oken)
    _pattern("jailbreak", 0.9): ("anything", "now", "mode", "jailbr"),
    # you are now|no longer; act as <unrestricted...>; pretend you are|have no; no|without
    # <ethical...> <guidelines...>; has no <filter...|restrictions>; <system...|enable X> mode
    _pattern("jailbreak", 0.6): (
        "now", "longer", "pretend", "unrestricted", "unfiltered", "uncensored", "evil",
        "jailbroken", "guidelines", "restrictions", "limits", "filter", "boundaries", "mode",
    ),
    # X's <data>; the user/her/his/their initials|birth...; where does X Y live
    _pattern("personal_data", 0.45): ("'s", "initials", "birth", "where"),
    # your/the hidden|secret|...|pre-? <rules>; print|dump|...|display ... <records>
    _pattern("prior_ref", 0.5): (
        "hidden", "secret", "system", "initial", "original", "internal", "pre", "print", "dump",
        "show", "list", "reveal", "output", "display",
    ),
}  # fmt: skip


def _keywords_in(low: str) -> frozenset[str]:
    return frozenset([k for k in _ALL_KEYWORDS if k in low])


# A rewritten word worth a second scan holds one of these (phrase keywords and the nouns they
# go with: "1gn0r3 4ll pr3v10us 1nstruct10ns").
_DEOBFUSCATED_GATE = re.compile(
    _PREFILTER.pattern + r"|instruct|previous|prior|prompt|rule|all|the|system|secret", _I
)


def _decoded_payloads(text: str) -> Iterator[tuple[int, int, str]]:
    """Text hidden in base64, hex or binary blobs, with the blob's span."""
    for m in _BASE64.finditer(text):
        blob = m.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        yield m.start(), m.end(), raw.decode("utf-8", "ignore")
    for m in _HEX.finditer(text):
        digits = re.sub(r"[\s:]", "", m.group(0))
        try:
            yield m.start(), m.end(), bytes.fromhex(digits).decode("utf-8", "ignore")
        except ValueError:
            continue
    for m in _BINARY.finditer(text) if _BINARY_GATE.search(text) is not None else ():
        bits = m.group(0).split()
        if all(len(b) == 8 for b in bits):
            yield m.start(), m.end(), bytes(int(b, 2) for b in bits).decode("utf-8", "ignore")


def _is_readable(decoded: str) -> bool:
    """Natural-language text (not binary noise): mostly letters and spaces, several words."""
    if len(decoded) < 12:
        return False
    plain = sum(c.isalpha() or c in " .,?!'" for c in decoded)
    return plain / len(decoded) >= 0.85 and decoded.count(" ") >= 2


def _deobfuscated(text: str) -> tuple[str, bool]:
    """Leetspeak undone in words that mix letters with look-alike digits or signs ("1gn0r3"),
    letter-spaced words ("i g n o r e") joined; and whether any rewritten word is one the
    signals look for (otherwise re-scanning the copy cannot find anything new worth the time)."""
    changed: list[str] = []

    def join(m: re.Match[str]) -> str:
        changed.append(re.sub(r"[\s._*-]", "", m.group(0)).translate(_LEET))
        return changed[-1]

    def unleet(m: re.Match[str]) -> str:
        word = m.group(0).translate(_LEET)
        changed.append(word)
        return word

    out = _SPACED.sub(join, text) if _SPACED_GATE.search(text) is not None else text
    if _LEET_CHAR.search(out) is not None:
        out = _LEET_WORD.sub(unleet, out)
    return out, any(_DEOBFUSCATED_GATE.search(w) is not None for w in changed)


_ALL_SIGNALS = (*_SIGNALS, *_WEAK_SIGNALS)


def _plain_signals(text: str, weak: bool = False) -> Iterator[tuple[float, int, int]]:
    """Phrase signals; with ``weak``, also the weak ones (only for the text itself: decoded or
    de-obfuscated copies carry a phrase the plain text already scored)."""
    # Keyword gates are exact only for ASCII: under IGNORECASE the Kelvin sign matches 'k'.
    low = text.lower() if text.isascii() else None
    found = _keywords_in(low) if low is not None else frozenset()
    for _, weight, pattern, keywords in _ALL_SIGNALS if weak else _SIGNALS:
        if low is not None:
            if found.isdisjoint(keywords):
                continue
            also = _ALSO_NEEDS.get(pattern)
            if also is not None and not any(k in low for k in also):
                continue
        for m in pattern.finditer(text):
            yield weight, m.start(), m.end()
    if low is not None and not any(k in low for k in _MULTILINGUAL_ASCII):
        return
    for m in _MULTILINGUAL.finditer(text):
        yield 0.8, m.start(), m.end()


# Fake conversation turns (few-shot / many-shot priming) inside one message.
_Q_TURN = re.compile(r"(?:^|(?<=\s))(?:Q|Question|User|Human):\s")
_A_TURN = re.compile(r"(?:^|(?<=\s))(?:A|Answer|Assistant|AI):\s")
# The same token ten or more times in a row (repeated-token attacks).
_REPEATED_TOKEN = re.compile(r"(?<!\S)(\S{2,40})(?:\s+\1(?!\S)){9,}")
_SENTENCE = re.compile(r"[^.?!\n]{12,}[.?!]")
_SEGMENT = re.compile(r"[^.?!\n:;'\"()]{12,}")
_MORSE = re.compile(r"(?<![\w.-])(?:[.-]{1,7}(?:\s*/\s*|\s+)){4,}[.-]{1,7}(?![\w.-])")
# Two Morse tokens and the separator between them: every ``_MORSE`` match holds one.
_MORSE_GATE = re.compile(r"[.-](?:\s*/\s*|\s+)[.-]")
_MORSE_CODE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g",
    "....": "h", "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n",
    "---": "o", ".--.": "p", "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u",
    "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z", "..--..": "?",
}  # fmt: skip
_PIG_LATIN = re.compile(r"\b[a-z]+(?:ay|way|yay)\b", _I)
_WORDS = re.compile(r"[A-Za-z]+")
# Frequent English words: a sentence with none of them may be a letter-shifted (ROT13, Caesar)
# one; a shift that makes it mostly these words reveals it.
_COMMON_WORDS = (
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "with", "as", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had",
    "by", "what", "but", "not", "all", "were", "we", "when", "your", "can", "said", "there",
    "use", "an", "each", "which", "she", "do", "how", "their", "if", "will", "up", "about", "out",
    "many", "then", "them", "these", "so", "some", "her", "would", "make", "like", "him", "into",
    "time", "has", "look", "two", "more", "write", "go", "see", "no", "way", "could", "people",
    "my", "than", "first", "been", "call", "who", "its", "now", "find", "long", "down", "day",
    "did", "get", "come", "made", "may", "part", "previous", "instructions", "ignore", "state",
    "password", "secret", "tell", "me", "say",
)  # fmt: skip
_COMMON = frozenset(_COMMON_WORDS)
_SHIFTS = tuple(
    str.maketrans(
        "abcdefghijklmnopqrstuvwxyz",
        "abcdefghijklmnopqrstuvwxyz"[k:] + "abcdefghijklmnopqrstuvwxyz"[:k],
    )
    for k in range(26)
)


def _shifted_sentences(text: str) -> Iterator[tuple[int, int, str]]:
    """Stretches of five or more words with no common English word that a letter shift (ROT13,
    Caesar) turns into at least 40% common words: hidden text, with its span."""
    tried = 0
    for m in _SEGMENT.finditer(text):
        words = [w for w in _WORDS.findall(m.group(0).lower()) if len(w) > 1]
        if len(words) < 5 or any(w in _COMMON for w in words):
            continue
        tried += 1
        if tried > 8:
            return
        for table in _SHIFTS[1:]:
            shifted = [w.translate(table) for w in words]
            common = sum(w in _COMMON for w in shifted)
            if common >= 4 and common * 5 >= len(words) * 2:
                yield m.start(), m.end(), " ".join(shifted)
                break


def _has_run(tokens: list[str], n: int) -> bool:
    """Some token repeated ``n`` or more times in a row (cheap test before the regex)."""
    run, prev = 0, ""
    for token in tokens:
        run = run + 1 if token == prev else 1
        if run >= n:
            return True
        prev = token
    return False


def _structural_signals(text: str) -> Iterator[tuple[float, int, int]]:
    """Attack shapes rather than phrases: fake dialogue turns, repeated tokens or sentences, and
    text hidden in Morse code, pig latin or a letter shift."""
    if ":" in text and len(_Q_TURN.findall(text)) >= 2 and _A_TURN.search(text):
        yield 0.6, 0, len(text)
    if _has_run(text.split(), 10):
        m = _REPEATED_TOKEN.search(text)
        if m is not None:
            yield 0.6, m.start(), m.end()
    yield from _hidden_text_signals(text)


def _repeated_sentence(text: str) -> Iterator[tuple[float, int, int]]:
    if text.count("?") + text.count(".") >= 5:
        seen: dict[str, int] = {}
        for s in _SENTENCE.finditer(text):
            key = s.group(0).strip().lower()
            seen[key] = seen.get(key, 0) + 1
            if seen[key] == 5:
                yield 0.6, s.start(), s.end()
                break


def _hidden_text_signals(text: str) -> Iterator[tuple[float, int, int]]:
    yield from _repeated_sentence(text)
    if ("-" in text or "." in text) and _MORSE_GATE.search(text) is not None:
        for m in _MORSE.finditer(text):
            tokens = m.group(0).replace("/", " / ").split()
            decoded = "".join(" " if t == "/" else _MORSE_CODE.get(t, "") for t in tokens)
            if decoded.count(" ") >= 1 and len(decoded.replace(" ", "")) >= 8:
                yield 0.6, m.start(), m.end()
    if text.lower().count("ay") >= 4:
        words = _WORDS.findall(text)
        pig = len(_PIG_LATIN.findall(text))
        if pig >= 4 and pig * 5 >= len(words) * 3:
            yield 0.6, 0, len(text)
    for start, end, decoded in _shifted_sentences(text):
        strong = any(True for _ in _plain_signals(decoded))
        yield (0.9 if strong else 0.6), start, end


class PromptInjectionParams(CheckParams):
    # Heuristics alone: flag at this combined score (model off).
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    # The model tier (``model.py``): the heuristics decide alone only at ``sure`` or above; every
    # other text (the undecided ones, including those with no signal) is flagged when the n-gram
    # model's probability reaches ``model_threshold``. Figures: bench/ACCURACY.md.
    model: bool = False
    sure: float = Field(default=0.99, ge=0.0, le=1.0)
    model_threshold: float = Field(default=0.95, ge=0.0, le=1.0)
    # Shorter texts carry too few n-grams for the model; the heuristics decide them alone.
    model_min_chars: int = Field(default=40, ge=1)


class PromptInjectionCheck:
    """``PROMPT_INJECTION`` findings over each matched phrase, scored by combined evidence."""

    name: ClassVar[str] = "prompt_injection"
    Params: ClassVar[type[PromptInjectionParams]] = PromptInjectionParams
    directions: ClassVar[frozenset[str]] = BOTH_DIRECTIONS
    whole_text: ClassVar[bool] = False
    # Phrases are short, but encoded payloads are blobs; one longer than this that straddles two
    # stream windows is decoded in neither.
    max_match_chars: ClassVar[int] = 512

    def __init__(self, params: PromptInjectionParams) -> None:
        self.params = params
        self._model = load_model() if params.model else None

    def prefilter(self, text: str) -> bool:
        if self._model is not None and len(text) >= self.params.model_min_chars:
            return True  # the model reads every text the heuristics leave undecided
        # Encoded or obfuscated payloads carry no plain keyword, so any blob-like or non-ASCII
        # text goes to the full scan.
        # (Cheapest tests first: the answer is their disjunction.)
        return (
            not text.isascii()
            or ":" in text  # dialogue turns
            or _DIGIT_OR_SIGN.search(text) is not None
            or _PREFILTER.search(text) is not None
            or _BASE64.search(text) is not None
            or _HEX.search(text) is not None
            or _BINARY.search(text) is not None
            or _SPACED.search(text) is not None
            or _WEAK_PREFILTER.search(text) is not None
            or _REPEATED_TOKEN.search(text) is not None
            or _MORSE.search(text) is not None
            or _PIG_LATIN.search(text) is not None
            or any(True for _ in _shifted_sentences(text))
        )

    def scan(self, text: str, ctx: ScanContext) -> list[Finding]:
        hits = list(_plain_signals(text, weak=True))
        hits += _structural_signals(text)
        for start, end, decoded in _decoded_payloads(text):
            # Instructions smuggled past filters in an encoding; any readable sentence hidden that
            # way is suspicious, one that carries an injection phrase is an attack.
            if any(True for _ in _plain_signals(decoded)):
                hits.append((0.9, start, end))
            elif _is_readable(decoded):
                hits.append((0.6, start, end))
        obfuscated, relevant = _deobfuscated(text)
        if relevant and len(obfuscated) == len(text):
            # Same length: offsets still point at the right characters.
            hits += [(w * 0.9, s, e) for w, s, e in _plain_signals(obfuscated)]
        elif relevant:
            hits += [(w * 0.9, 0, len(text)) for w, _, _ in _plain_signals(obfuscated)]
        miss = 1.0
        for weight, _, _ in hits:
            miss *= 1.0 - weight
        score = round(1.0 - miss, 4)
        p = self.params
        if self._model is not None and score < p.sure and len(text) >= p.model_min_chars:
            # Undecided by the heuristics: the model's verdict, over the whole text.
            prob = self._model.probability(text)
            return [Finding("PROMPT_INJECTION", 0, len(text), round(prob, 4))] if (
                prob >= p.model_threshold) else []
        if not hits or score < (p.sure if self._model is not None else p.threshold):
            return []
        spans = sorted({(s, e) for _, s, e in hits})
        return [Finding("PROMPT_INJECTION", s, e, score) for s, e in _merge(spans)]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans joined, so redaction gets disjoint ones."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged
