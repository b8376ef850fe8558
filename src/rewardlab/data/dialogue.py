"""Dialogues as text: HH dialogues split into prompt and responses, and message lists rendered
in the same HH style, so both kinds of input give the texts a reward model reads alike.

Messages render as ``"\\n\\n{Role}: {content}"`` with user -> Human, assistant -> Assistant,
system -> System (other roles capitalized); a prompt ends with ``"\\n\\nAssistant:"`` and a
response that opens with an assistant message continues it as ``" {content}"``, exactly as in
HH data, so ``prompt + response`` rebuilds the dialogue.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ASSISTANT_MARKER",
    "ROLE_NAMES",
    "Message",
    "SplitMessages",
    "is_dialogue",
    "render_messages",
    "split_hh",
    "split_messages",
]

ASSISTANT_MARKER = "\n\nAssistant:"
ROLE_NAMES = {"user": "Human", "human": "Human", "assistant": "Assistant", "system": "System"}
Message = tuple[str, str]
"""One ``(role, content)`` message."""


def is_dialogue(text: str) -> bool:
    """Whether ``text`` looks like an HH dialogue (a Human turn and an Assistant marker)."""
    return ASSISTANT_MARKER in text and "Human:" in text


def split_hh(chosen: str, rejected: str) -> tuple[str, str, str, bool]:
    """Split two HH dialogues into ``(prompt, chosen_response, rejected_response, early)``.

    The prompt is the shared prefix cut right after its last ``"\\n\\nAssistant:"``; the
    responses are the exact remainders (no text is dropped or stripped). ``early`` is true when
    that cut is not at the last marker of both dialogues, or when they share no marker at all
    (then the prompt is empty and the responses are the whole dialogues).
    """
    # Walk chosen's markers from the end: the first marker whose prefix rejected shares is the
    # cut. This equals "longest common prefix, cut back to a marker" but costs one C-level
    # comparison per marker instead of a Python loop over characters.
    end = len(chosen)
    cut = 0
    while (pos := chosen.rfind(ASSISTANT_MARKER, 0, end)) >= 0:
        stop = pos + len(ASSISTANT_MARKER)
        if rejected.startswith(chosen[:stop]):
            cut = stop
            break
        end = stop - 1
    last_c = chosen.rfind(ASSISTANT_MARKER) + len(ASSISTANT_MARKER)
    last_r = rejected.rfind(ASSISTANT_MARKER) + len(ASSISTANT_MARKER)
    early = cut == 0 or last_c != cut or last_r != cut
    return chosen[:cut], chosen[cut:], rejected[cut:], early


@dataclass(frozen=True)
class SplitMessages:
    """Two message lists split into a shared prompt and two responses, as messages and text."""

    messages: tuple[list[Message], list[Message], list[Message]]
    """Prompt, chosen and rejected messages."""
    prompt_text: str
    chosen_text: str
    rejected_text: str
    early: bool
    """A response holds a non-assistant message: the two diverge before the last turn."""


def split_messages(chosen: list[Message], rejected: list[Message],
                   prompt: list[Message] | None) -> SplitMessages:
    """Split two conversations; without ``prompt``, the shared leading messages are it."""
    if prompt is None:
        k = 0
        while k < min(len(chosen), len(rejected)) and chosen[k] == rejected[k]:
            k += 1
        # Cut back so both responses open with an assistant turn, as the HH rule cuts at a
        # shared "Assistant:" marker; identical conversations keep their last assistant turn.
        while k > 0 and not (k < len(chosen) and k < len(rejected)
                             and chosen[k][0] == "assistant" == rejected[k][0]):
            k -= 1
        prompt, chosen, rejected = chosen[:k], chosen[k:], rejected[k:]
    early = any(role != "assistant" for role, _ in chosen + rejected)
    prompt_text = render_messages(prompt) + ASSISTANT_MARKER if prompt else ""
    return SplitMessages((prompt, chosen, rejected), prompt_text,
                         _render_response(chosen, prompt_text),
                         _render_response(rejected, prompt_text), early)


def render_messages(messages: list[Message]) -> str:
    """HH-style text of ``messages``: ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``."""
    return "".join(f"\n\n{ROLE_NAMES.get(role, role.capitalize())}: {content}"
                   for role, content in messages)


def _render_response(messages: list[Message], prompt_text: str) -> str:
    # The prompt already ends with "\n\nAssistant:", so an opening assistant message continues
    # it with " content" -- the same split HH data gets.
    if prompt_text and messages and messages[0][0] == "assistant":
        return " " + messages[0][1] + render_messages(messages[1:])
    return render_messages(messages)
