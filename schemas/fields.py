"""Named text fields of records, as polars expressions, so filters and dedup keys can say *what* to look at.

Fields by kind (``text`` is everything, joined with blank lines):

=============  =================================  ===============================  =======================
kind           prompt                             response                         other
=============  =================================  ===============================  =======================
text           -                                  -                                text
alpaca         instruction (+ blank line + input) output                           instruction, input
sft            user turns                         last assistant turn              conversation, system
preference     prompt turns                       chosen's text                    chosen, rejected
kto            prompt turns                       completion's text                completion
=============  =================================  ===============================  =======================

``conversation`` is every message as ``role: content``, so the same words from different speakers
differ. Multi-turn texts are joined with a blank line.

Example:
    >>> import polars as pl
    >>> from schemas.kinds import Kind, MESSAGES
    >>> df = pl.DataFrame({"messages": [[{"role": "user", "content": "Hi"},
    ...                                  {"role": "assistant", "content": "Hello!"}]]},
    ...                   schema={"messages": MESSAGES})
    >>> df.select(field_expr(Kind.SFT, "prompt"), field_expr(Kind.SFT, "response")).row(0)
    ('Hi', 'Hello!')
"""

from __future__ import annotations

import polars as pl

from schemas.kinds import Kind

JOIN = "\n\n"


def _contents(col: str, role: str | None = None) -> pl.Expr:
    msgs = pl.col(col)
    if role is not None:
        msgs = msgs.list.eval(pl.element().filter(pl.element().struct.field("role") == role))
    return msgs.list.eval(pl.element().struct.field("content")).list.join(JOIN)


def _tagged(col: str) -> pl.Expr:
    tagged = pl.element().struct.field("role") + ": " + pl.element().struct.field("content")
    return pl.col(col).list.eval(tagged).list.join(JOIN)


def _fields(kind: Kind) -> dict[str, pl.Expr]:
    if kind is Kind.TEXT:
        return {"text": pl.col("text")}
    if kind is Kind.ALPACA:
        inp = pl.col("input").fill_null("")
        prompt = pl.when(inp.str.strip_chars() != "").then(pl.col("instruction") + JOIN + inp)
        prompt = prompt.otherwise(pl.col("instruction"))
        return {
            "prompt": prompt,
            "instruction": pl.col("instruction"),
            "input": inp,
            "response": pl.col("output"),
            "text": pl.concat_str([prompt, pl.col("output")], separator=JOIN),
        }
    if kind is Kind.SFT:
        return {
            "prompt": _contents("messages", "user"),
            "system": _contents("messages", "system"),
            # valid SFT records end on an assistant turn (schemas.validate), so the last message is
            # the response; anything else has none
            "response": pl.when(pl.col("messages").list.last().struct.field("role") == "assistant")
            .then(pl.col("messages").list.last().struct.field("content"))
            .otherwise(pl.lit(None, dtype=pl.String)),
            "conversation": _tagged("messages"),
            "text": _contents("messages"),
        }
    if kind is Kind.PREFERENCE:
        return {
            "prompt": _contents("prompt", "user"),
            "response": _contents("chosen"),
            "chosen": _contents("chosen"),
            "rejected": _contents("rejected"),
            "conversation": pl.concat_str([_tagged("prompt"), _tagged("chosen")], separator=JOIN),
            "text": pl.concat_str([_contents("prompt"), _contents("chosen"), _contents("rejected")], separator=JOIN),
        }
    return {  # KTO
        "prompt": _contents("prompt", "user"),
        "response": _contents("completion"),
        "completion": _contents("completion"),
        "conversation": pl.concat_str([_tagged("prompt"), _tagged("completion")], separator=JOIN),
        "text": pl.concat_str([_contents("prompt"), _contents("completion")], separator=JOIN),
    }


def field_names(kind: Kind) -> list[str]:
    """Fields available for ``kind``."""
    return list(_fields(kind))


def field_expr(kind: Kind, name: str) -> pl.Expr:
    """Expression for field ``name`` of ``kind`` records, aliased to ``name``.

    Raises:
        KeyError: the kind has no such field (the message lists the ones it has).
    """
    fields = _fields(kind)
    if name not in fields:
        raise KeyError(f"{kind} records have no field {name!r}; use one of {', '.join(fields)}")
    return fields[name].fill_null("").alias(name)


def key_expr(kind: Kind, names: list[str]) -> pl.Expr:
    """Several fields joined into one key (``["prompt", "chosen"]`` -> prompt + separator + chosen)."""
    if len(names) == 1:
        return field_expr(kind, names[0]).alias("__key")
    return pl.concat_str([field_expr(kind, n) for n in names], separator="\x1d").alias("__key")
