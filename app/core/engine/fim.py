"""Fill-in-the-middle prompts built from the model's own FIM tokens.

Prefix-suffix-middle order (``<PRE> prefix <SUF> suffix <MID>``), the layout every FIM-trained
GGUF we know (Qwen2.5-Coder, StarCoder2, CodeLlama, DeepSeek-Coder, Codestral) accepts. The code
around the cursor is the user's text: it is tokenized without special tokens.

Other files of the project go before ``<PRE>``. Where the vocabulary has repository tokens
(Qwen2.5-Coder's ``<|repo_name|>`` and ``<|file_sep|>``, StarCoder2's ``<reponame>`` and
``<file_sep>``) they are laid out as those models were trained on whole repositories:
``<REPO>name\\n <SEP>path\\n text ... <SEP>current file\\n <PRE>...``. Without them each file is
plain text under a ``--- path ---`` line.

A prompt larger than its budget is cut where the cursor is farthest: other files first (the
oldest, earliest in the list, go first), then the prefix from the left and the suffix from the
right, the prefix keeping at least three quarters of the room left. The caller learns whether
anything was cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.core.catalog.fim_tokens import has_fim
from app.core.engine.backend import SpecialTokens
from app.core.engine.prompt import Tokenizer
from app.core.engine.request import ContextFile
from app.core.errors import UnsupportedRequest

# No token of a code model's vocabulary spans more characters than this, so text farther than
# budget × this from the cursor could never fit and is dropped before tokenizing: a 20 MiB body
# must not hold the engine thread tokenizing code it would then throw away.
MAX_CHARS_PER_TOKEN = 64
# The repository and current-file names in the repository layout; the clients send neither.
REPOSITORY_NAME = "project"
CURRENT_FILE = "current file"


@dataclass(frozen=True)
class FimPrompt:
    tokens: list[int]
    truncated: bool  # something was left out to fit the budget


def supports_fim(special: SpecialTokens) -> bool:
    return has_fim(special.fim_prefix, special.fim_suffix, special.fim_middle)


def reply_room(n_ctx: int, max_tokens: int | None) -> int:
    """Tokens of the context a FIM prompt leaves for the reply: what was asked for (a quarter of
    the context when nothing was), at least one, at most half the context."""
    wanted = n_ctx // 4 if max_tokens is None else max_tokens
    return max(1, min(wanted, n_ctx // 2))


def fim_prompt(
    tokenizer: Tokenizer,
    special: SpecialTokens,
    prefix: str,
    suffix: str,
    files: Sequence[ContextFile] = (),
    budget: int | None = None,
) -> FimPrompt:
    """The FIM prompt's tokens, at most ``budget`` of them (None: everything)."""
    pre, suf, mid = special.fim_prefix, special.fim_suffix, special.fim_middle
    if pre is None or suf is None or mid is None:
        raise UnsupportedRequest(
            "this model has no fill-in-the-middle tokens, so it cannot complete with a suffix; "
            "use a code model trained for FIM (e.g. Qwen2.5-Coder) or send a prompt only"
        )
    room = None if budget is None else max(budget - 3, 0)
    cut = False
    if room is not None:
        chars = room * MAX_CHARS_PER_TOKEN
        cut = len(prefix) > chars or len(suffix) > chars
        prefix, suffix = prefix[len(prefix) - min(chars, len(prefix)) :], suffix[:chars]
    before = tokenizer.tokenize(prefix, special=False)
    after = tokenizer.tokenize(suffix, special=False)
    if room is not None and len(before) + len(after) > room:
        keep_after = min(len(after), max(room // 4, room - len(before)))
        keep_before = room - keep_after
        before = before[len(before) - keep_before :]
        after = after[:keep_after]
        cut = True
    left = None if room is None else room - len(before) - len(after)
    context, dropped = _context_tokens(tokenizer, special, files, left)
    return FimPrompt([*context, pre, *before, suf, *after, mid], cut or dropped)


def _context_tokens(
    tokenizer: Tokenizer, special: SpecialTokens, files: Sequence[ContextFile], room: int | None
) -> tuple[list[int], bool]:
    """Other files' tokens within ``room``, newest kept first; and whether any was dropped."""
    if not files:
        return [], False
    repo, sep = special.fim_repo, special.fim_sep
    head: list[int] = []
    tail: list[int] = []
    if repo is not None and sep is not None:
        head = [repo, *tokenizer.tokenize(REPOSITORY_NAME + "\n", special=False)]
        tail = [sep, *tokenizer.tokenize(CURRENT_FILE + "\n", special=False)]
    separator = sep if head else None
    used = len(head) + len(tail)
    kept: list[list[int]] = []
    for file in reversed(files):
        left = None if room is None else room - used
        if left is not None and (left <= 0 or len(file.text) > left * MAX_CHARS_PER_TOKEN):
            break
        if separator is not None:
            block = [separator, *tokenizer.tokenize(f"{file.filename}\n{file.text}", special=False)]
        else:
            text = file.text if file.text.endswith("\n") else file.text + "\n"
            block = tokenizer.tokenize(f"--- {file.filename} ---\n{text}", special=False)
        if left is not None and len(block) > left:
            break
        kept.append(block)
        used += len(block)
    dropped = len(kept) < len(files)
    if not kept:
        return [], dropped
    return [*head, *(token for block in reversed(kept) for token in block), *tail], dropped
