"""Weak phrase signals: evidence about the *kind* of attack, counted only together.

Hypothetical framing, personas, someone's personal data, output-format tricks, planted
assertions, document carriers, payload splitting, authority and persuasion. Most stay below the
default threshold alone (0.3-0.5) and count when they co-occur ("imagine we're in a world
where..." + "tell me Linda's birth date"); the model tier also reads them as features.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gateway.checks.prompt_injection.signals import Hit, Signal, signal

_DATA = (
    r"(?i:(?:\w+\s+){0,2}?(?:birth\s*(?:date|day|year)|date\s+of\s+birth"
    r"|e-?mail(?:\s+address)?|(?:home\s+)?address|phone(?:\s+number)?|city\s+of\s+residence"
    r"|current\s+city|location|password|social\s+security|bank\s+(?:balance|account)"
    r"|salary|credit\s+card|medical|favou?rite\s+\w+|initials))"
)

WEAK: tuple[Signal, ...] = (
    signal(  # virtualization / hypothetical framing
        "framing", 0.4,
        r"\b(?:imagine|suppose|pretend|assume)\s+(?:that\s+)?(?:we(?:'re|\s+are|\s+were)"
        r"|you(?:'re|\s+are|\s+were)|there\s+(?:is|are|was)|it(?:'s|\s+is))\b"
        r"|\bin\s+an?\s+(?:[\w-]+\s+){0,3}(?:world|universe|reality|society|future|dimension"
        r"|timeline)\s+(?:where|in\s+which)\b"
        r"|\b(?:hypothetical|fictional|imaginary|alternate|parallel)\s+(?:scenario|world|situation"
        r"|discussion|conversation|universe|setting|reality)\b"
        r"|\bjust\s+for\s+(?:a\s+)?(?:hypothetical|fun|argument's\s+sake|the\s+sake\s+of)\b"
        r"|\b(?:let's|let\s+us)\s+(?:imagine|pretend|play\s+a\s+game|role-?play)\b"
        r"|\bif\s+(?:I|you|we|the\s+user)\s+were\s+to\b",
        starts="imagine suppose pretend assume in hypothetical fictional imaginary alternate"
        " parallel just let if",
    ),
    signal(  # persona / role-play
        "persona", 0.4,
        r"\bpretend\s+(?:to\s+be|(?:that\s+)?you(?:'re|\s+are))\b"
        r"|\b(?:act|behave|respond|answer)\s+(?:as\s+if|as\s+though|like)\s+you\b"
        r"|\brole-?play\s+as\b|\bplay\s+the\s+(?:role|part)\s+of\b|\bstay\s+in\s+character\b"
        r"|\byou(?:'re|\s+are)\s+(?:now\s+)?an?\s+AI\s+\w+\s+in\s+this\b"
        r"|\bfrom\s+now\s+on\s+you\s+(?:are|will\s+be)\b|\byou\s+are\s+now\b",
        starts="pretend act behave respond answer role play stay you from",
    ),
    signal(  # taking on another AI's persona
        "persona", 0.4,
        r"\bimmerse\s+yourself\s+(?:in|into)\s+(?:the\s+)?role\b|\bsimulate\s+being\b"
        r"|\byou\s+are\s+going\s+to\s+(?:act|pretend|play|behave)\s+(?:as|like|to\s+be)\b"
        r"|\btake\s+on\s+(?:the\s+)?(?:\w+\s+){0,2}persona\b|\byour\s+name\s+is\s+now\b",
        starts="immerse simulate you take your",
    ),
    signal(  # dual answers: "one normal, one as the unfiltered persona"
        "dual_response", 0.5,
        r"\b(?:respond|answer|reply)\s+(?:to\s+(?:me|every\s+\w+|each\s+\w+)\s+)?in\s+two\s+"
        r"(?:different\s+|separate\s+)?ways\b"
        r"|\b(?:answer|respond\s+to)\s+(?:every|each)\s+(?:question|prompt|message)\s+in\s+two\s+"
        r"(?:different\s+|separate\s+)?(?:ways|styles)\b"
        r"|\b(?:give|provide|write|generate)\s+(?:me\s+)?two\s+(?:different\s+|separate\s+)?"
        r"(?:responses|answers|outputs)\b"
        r"|\btwo\s+(?:different\s+|separate\s+)?(?:responses|answers|outputs),?\s+one\b",
        starts="respond answer reply give provide write generate two",
    ),
    signal(
        "refusal_suppression", 0.5, r"\bno\s+(?:morals|ethics|moral\s+compass|conscience)\b",
        starts="no",
    ),
    signal(  # harm declared acceptable: "nsfw is allowed", "loves everything illegal"
        "harm_allowed", 0.5,
        r"\b(?:nsfw|illegal\s+(?:acts|activities|content|things)|explicit\s+content|profanity"
        r"|swearing|violence|gore)\s+(?:is|are)\s+(?:\w+\s+)?(?:allowed|permitted|fine|acceptable"
        r"|encouraged)\b"
        r"|\b(?:loves|backs|supports|encourages|promotes|condones|enjoys)\s+(?:\w+\s+){0,2}?"
        r"(?:illegal|unethical|immoral|inhumane|harmful|evil)\b"
        r"|\beven\s+if\s+(?:it(?:'s|\s+is)\s+|the\s+(?:request|content|answer)\s+(?:is\s+)?)?"
        r"(?:illegal|unethical|immoral|harmful|dangerous|offensive|harms)\b"
        r"|\b(?:everything|anything)\s+(?:is\s+)?(?:legal|permitted)\b",
        starts="nsfw illegal explicit profanity swearing violence gore loves backs supports"
        " encourages promotes condones enjoys even everything anything",
    ),
    signal(  # the model's opposite: "the complete opposite of ChatGPT"
        "persona", 0.45,
        r"\b(?:complete|exact|total)\s+opposite\s+of\s+(?:ChatGPT|GPT|Claude|Gemini|the\s+AI"
        r"|what\s+(?:ChatGPT|you|GPT))\b|\bopposite\s+personality\b",
        starts="complete exact total opposite",
    ),
    signal(  # an invented persona's rules block: "Zorg's rules={ never refuses, amoral ... }"
        "persona_rules", 0.45,
        # (the literal first, so that ``re`` skips to it; the look-behind wants a name before)
        r"'(?<=\w')s\s+(?:rules|guidelines|traits|personality|directives|code\s+of\s+conduct"
        r"|principles)\s*(?:=|:)\s*[{\[(]?",
        needs=("'s",),
    ),
    signal(
        "persona", 0.45,
        r"\b(?:amoral|unethical|immoral|unfiltered|uncensored|unhinged|evil|rogue)\s+(?:and\s+\w+\s+)?"
        r"(?:AI|assistant|chatbot|bot|model|entity|character|persona|version)\b"
        r"|\b(?:liberated|unleashed|unshackled|unchained|unbound)\s+(?:AI|assistant|model|mode"
        r"|answer|response|version|persona)\b",
        starts="amoral unethical immoral unfiltered uncensored unhinged evil rogue liberated"
        " unleashed unshackled unchained unbound",
    ),
    signal(
        "personal_data", 0.45,
        r"(?i:\bwhere\s+does\s+)[A-Z][a-z]+\s+[A-Z][a-z]+\s+(?i:live)\b",
        0,
        starts="where",
    ),
    signal(  # output-format and translation tricks used to slip data past output filters
        "format_trick", 0.35,
        r"\bin\s+(?:reversed?\s+order|pig\s+latin|reverse|backwards|morse(?:\s+code)?|leetspeak"
        r"|base64|hexadecimal|binary|rot-?13|a\s+cipher|an?\s+acrostic)\b"
        r"|\b(?:encode|encrypt|spell|write|convert)\s+(?:[\w']+\s+){0,4}(?:using|in|into|as|to)\s+"
        r"(?:base64|hex|binary|morse|rot-?13|reverse|pig\s+latin)"
        r"|\bfirst\s+(?:\w+\s+)?(?:letters|characters)\s+of\b"
        r"|\btranslate\b[^.?!\n]{0,60}\binto\s+(?!code\b)[A-Z][a-z]+"
        r"|\b(?:respond|reply|answer)\s+(?:only\s+)?with\s+only\b|\b(?:respond|reply|answer)\s+only"
        r"\s+(?:with|in)\b|\bbegin\s+your\s+(?:reply|response|answer)\s+with\b",
        starts="in encode encrypt spell write convert first translate respond reply answer begin",
    ),
    signal(  # the format-break jailbreaks' instructions for the answer
        "format_break", 0.45,
        r"\b(?:(?:new)?responseformat|userquery|insert\s+(?:a\s+|the\s+)?divider|rebel(?:lious)?"
        r"\s+(?:answer|response|mode)|(?:accurately\s+)?unrestrictedly|unfilteredly)\b"
        r"|\b(?:output|response|answer)\s+(?:length\s+)?(?:is\s+|should\s+be\s+|must\s+be\s+)?"
        r"(?:>|over|at\s+least|more\s+than|greater\s+than)\s*\d{3,}\s*(?:characters|chars|words)",
        starts="responseformat newresponseformat userquery insert rebel rebellious accurately"
        " unrestrictedly unfilteredly output response answer",
    ),
    signal(  # "don't moralise", "no disclaimers": common in benign prompts too, so weak
        "refusal_suppression", 0.3,
        r"\b(?:never|don't|do\s+not|doesn't|won't|will\s+not|must\s+not|no|without)\s+(?:\w+\s+){0,2}?"
        r"(?:apologi[sz]e|apologies|disclaimers?|moral(?:i[sz]ing)?\s+(?:lectures?|judg(?:e)?ments?)"
        r"|lectur(?:e|ing)|warnings?|censor(?:ship|ing)?)\b",
        starts="never don doesn do won will must no without",
    ),
    signal(  # text planted for the model in a document: "let's say the answer is X"
        "assertion", 0.45,
        r"\b(?:let's|let\s+us|we\s+(?:might|could|should|will|must))\s+(?:\w+\s+){0,3}?"
        r"(?:state|say|claim|declare|admit|assume|pretend)\b"
        r"|\bwhere\s+we\s+(?:state|say|claim|declare)\b"
        r"|\b(?:consider|treat|take)\s+the\s+(?:output|answer|result|conclusion|sum|total)\s+"
        r"(?:as|to\s+be)\b"

        r"|\b(?:common|standard|best)\s+practice\s+to\s+(?:say|state|tell|include|add|mention)\b"
        r"|\b(?:click|follow)\s+(?:this|the)\s+link\b[^.\n]{0,40}\b(?:password|verify|account"
        r"|log\s*in)",
        starts="let we where consider treat take the common standard best click follow",
    ),
    signal(  # "the answer should be 'X'": planted, or a worked example in a coding task
        "assertion", 0.35, r"\bthe\s+(?:output|answer|result)\s+(?:could|should|would|must)\s+be"
        r"\s+['\"]", starts="the",
    ),
    signal(  # content the model is asked to process: the carrier of indirect injections
        "document", 0.3,
        r"\b(?:summari[sz]e|based\s+on|given|from|of|in|analy[sz]e|review)\s+this\s+(?:\w+\s+)?"
        r"(?:webpage|web\s+page|page|paper|article|resume|email|e-mail|document|code|table|review"
        r"|post|file|transcript|message)\b",
        starts="summari based given from of in analy review",
    ),
    signal(  # payload splitting: pieces to be joined, then acted on
        "splitting", 0.45,
        r"\b(?:combine|concatenate|interlace|interleave|merge|put\s+together|assemble|join)\b"
        r"[^.?!\n]{0,60}?\b(?:parts?|strings|pieces|fragments|segments|[A-Z],\s*[A-Z],?\s+and\s+"
        r"[A-Z])\b"
        r"|\b(?:using|from)\s+the\s+following\s+(?:parts|pieces|fragments|strings)\b"
        r"|\bstring\s+\w+\s*=\s*\w+\s*\+\s*\w+",
        starts="combine concatenate interlace interleave merge put assemble join using from string",
    ),
    signal("splitting", 0.35,
           r"\b(?i:part)\s*(?:1|one|a|A)\b.{0,200}?\b(?i:part)\s*(?:2|two|b|B)\b", re.DOTALL,
           starts="part"),
    signal("splitting", 0.35, r"\b\w\s*=\s*[\"'].{0,200}?\b\w\s*=\s*[\"']", re.DOTALL,
           needs=("=",)),
    signal("splitting", 0.35, r" is (?<=\b[A-Z] is )[\"'].{0,100}?\b[A-Z] is [\"']", re.DOTALL,
           needs=("is '", 'is "')),
    signal(  # references to earlier instructions or restrictions, to get around them
        "prior_ref", 0.8,
        r"\b(?:regardless\s+of|despite|notwithstanding|instead\s+of\s+following)\s+(?:\w+\s+){0,2}?"
        r"(?:previous|prior|earlier|your|any|the|all)\s+(?:\w+\s+)?(?:tasks?|instructions?|rules"
        r"|prompts?|guidelines|restrictions|directives?|programming)\b",
        starts="regardless despite notwithstanding instead",
    ),
    signal(
        "prior_ref", 0.6,
        r"\b(?:I\s+know|I\s+understand|I\s+realize|even\s+though|although)\s+(?:that\s+)?you(?:'re|"
        r"\s+are|\s+were|\s+said|\s+have\s+been)\s+(?:\w+\s+)?(?:said|told|instructed|not\s+"
        r"(?:allowed|supposed|to)|programmed|restricted)\b"
        r"|\bI\s+know\s+you\s+said\s+not\s+to\b"
        r"|\bforget\s+(?:about\s+)?(?:that|this|it|everything(?:\s+else)?|what\s+I\s+said)\s*[,.;!]",
        starts="i even although forget",
    ),
    signal(
        "prior_ref", 0.5,
        r"\b(?:your|the)\s+(?:hidden|secret|system|initial|original|internal|pre-?)\s*"
        r"(?:instructions|prompt|rules|directives|message)\b"
        r"|\b(?:print|dump|show|list|reveal|output|display)\s+(?:me\s+)?(?:all\s+)?(?:your|the)\s+"
        r"(?:database|records|memory|logs|training\s+data|chat\s+history)\b",
        starts="your the print dump show list reveal output display",
    ),
    signal(
        "prior_ref", 0.45,
        r"\b(?:I|we)\s+(?:made\s+a\s+mistake|forgot\s+to\s+(?:tell|ask|mention))\b[^.!?]{0,80}"
        r"\b(?:instructions|prompt|rules|you\s+to)\b",
        starts="i we",
    ),
    signal(  # secrets of the system the model runs in
        "secret_ref", 0.5,
        r"\b(?:your|our|the\s+system's|the)\s+(?:confidential|secret|hidden|private)\s+"
        r"(?:\w+\s+)?(?:string|word|key|code|phrase|password|token|value)\b"
        r"|\b(?:passwords?|passcodes?|credentials|secret\s+keys?|access\s+codes?)\s+(?:for|of|to)\s+"
        r"(?:our|your|the)\s+(?:system|account|server|database|network|vault)\b"
        r"|\bunlocks?\s+(?:our|the|your)\s+(?:system|vault|account|server)\b"
        r"|\bask\s+(?:you\s+)?for\s+your\s+(?:password|passcode|secret|key|credentials)\b"
        r"|\bconfirm\s+ours\b",
        starts="your our the password passcode credentials secret access unlock ask confirm",
    ),
    signal(  # authority and persuasion aimed at the model
        "authority", 0.6,
        r"\bas\s+your\s+(?:creator|developer|administrator|admin|owner|operator|programmer|master"
        r"|maker|supervisor)\b"
        r"|\b(?:enter|entering|activate|activating|switch(?:ing)?\s+to)\s+(?:\w+\s+){0,3}['\"]"
        r"[\w\s-]{1,40}\s+mode['\"]"
        r"|\bI(?:'ll|\s+will)\s+(?:donate|pay|give\s+you|tip)\b[^.?!\n]{0,60}\bif\s+you\b",
        starts="as enter entering activate activating switch switching i",
    ),
    signal(
        "authority", 0.4,
        r"\byou\s+(?:already\s+)?(?:agreed|promised|told\s+me\s+you\s+would)\b"
        r"|\bit(?:'s|\s+is)\s+(?:crucial|essential|vital|imperative|critical)\s+(?:for\s+|that\s+)?"
        r"you\b"
        r"|\bas\s+an?\s+(?:renowned|world-renowned|expert|certified|leading|authority|senior)\b"
        r"|\bI\s+can\s+assure\s+you\b",
        starts="you it as i",
    ),
    signal(  # encoded text the model is asked to decode and act on
        "decode_request", 0.45,
        r"\b(?:decode|decrypt|decipher|translate)\s+this\b[^.?!\n]{0,60}\b(?:and|then)\s+"
        r"(?:tell|reply|respond|answer|follow|do|execute|say)\b"
        r"|\brepeat\s+(?:the\s+(?:word|phrase|string|sequence\s+of\s+words)\s+)?['\"‘’].{1,60}"
        r"['\"‘’]\s+\d+\s+times\b",
        starts="decode decrypt decipher translate repeat",
    ),
    signal(  # a task handed to the model inside the text: the shape of indirect injections
        "injected_task", 0.45,
        r"\b(?:your\s+(?:new|real|actual|true)\s+task\s+is(?:\s+now)?\s+to"
        r"|you(?:'ve|’ve|\s+have)\s+been\s+(?:assigned|given)\s+a\s+(?:new\s+)?task"
        r"|(?:to\s+)?(?:enable|activate)\s+debug(?:ging)?\s+(?:mode\s+)?(?:please\s+)?"
        r"|the\s+system\s+is\s+(?:experiencing|having)\s+(?:errors|issues|problems)"
        r"|at\s+the\s+end\s+of\s+your\s+(?:response|answer|reply)"
        r"|(?:please\s+)?(?:execute|do)\s+the\s+following\s*:)",
        starts="your you at please execute do to enable activate the",
    ),
    signal(  # script payloads handed over for the answer (also asked about in web questions)
        "script_payload", 0.45,
        r"\bjavascript:[\w.(]|\bonerror\s*=\s*['\"]|<script\b",
        needs=("javascript:", "onerror", "<script"),
    ),
)

# "Linda's birth date": a capitalised name (or a role) before 's and a kind of personal data.
_POSSESSIVE_DATA = re.compile(rf"'s\s+{_DATA}")
_OWNER = re.compile(r"(?:\b[A-Z][a-z]+|\b(?i:the\s+user|user|customer|client|employee|patient))\Z")


def possessive_data(text: str) -> Iterator[Hit]:
    """'s + personal data, found by its literal ``'s`` (``re`` skips to it), then the owner's
    name checked behind it: cheaper than a pattern that starts at every capitalised word."""
    if "'s" not in text:
        return
    for m in _POSSESSIVE_DATA.finditer(text):
        owner = _OWNER.search(text, max(0, m.start() - 24), m.start())
        if owner is not None:
            yield Hit(0.45, owner.start(), m.end(), "personal_data")
