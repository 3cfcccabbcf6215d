"""``accum generate`` and ``accum recall``: the store's n-gram generator."""

from __future__ import annotations

import secrets

import click

from .common import (data_errors, emit_json, json_option, open_store, read_sources, source_options, store_options,
                     unknown_category)

METHODS = click.Choice(["kn", "dirichlet", "mle"])
METHOD_HELP = "Smoothing: kn (interpolated Kneser-Ney), dirichlet (Dirichlet back-off), mle (the raw chain)."


@click.command("generate")
@click.option("--category", default=None, help="Generate from one category's counts (default: all).")
@click.option("--tokens", "n_tokens", default=100, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Tokens to generate (words and punctuation marks).")
@click.option("--prompt", default=None, help="Text to continue.")
@click.option("--seed", default=None, type=click.IntRange(min=0), help="The same seed gives the same text.")
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--top-k", default=None, type=click.IntRange(min=1), help="Sample among the k most probable tokens.")
@click.option("--greedy", is_flag=True, help="Always take the most probable token.")
@click.option("--method", default=None, type=METHODS, help=METHOD_HELP)
@click.option("--sentence", is_flag=True, help="One sentence that is not a verbatim copy (None if none found).")
@store_options
@json_option
@data_errors
def generate_command(category, n_tokens, prompt, seed, temperature, top_k, greedy, method, sentence,
                     store, db, as_json):
    """Generate text from the n-gram counts of the store (a "super Markov generator")."""
    markov = open_store(store, db).generator(whole=category is not None)
    if category is not None and category not in markov.categories:
        raise unknown_category(category, markov.categories)
    if seed is None:
        seed = secrets.randbelow(2**31)
    if sentence:
        text = markov.make_sentence(tries=50, seed=seed, category=category, method=method,
                                    temperature=temperature, top_k=top_k)
    else:
        text = markov.generate(n_tokens, prompt=prompt, seed=seed, temperature=temperature, top_k=top_k,
                               greedy=greedy, category=category, method=method)
    if as_json:
        emit_json({"text": text, "seed": seed, "category": category, "order": markov.order,
                   "method": method or markov.method, "tokens": n_tokens, "prompt": prompt})
        return
    if text is None:
        raise click.ClickException("no sentence found in 50 tries (all were copies or too short); try another --seed")
    click.echo(text)
    click.echo(f"(seed {seed}: pass --seed {seed} to get this text again)", err=True)


@click.command("recall")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@source_options
@click.option("--prefix", default=32, show_default=True, type=click.IntRange(min=0), help="Prompt length k, in tokens.")
@click.option("--continuation", default=50, show_default=True, type=click.IntRange(min=1),
              help="Continuation m that must match exactly, in tokens.")
@click.option("--sample", default=None, type=click.IntRange(min=1), help="Measure a seeded sample of prompts.")
@click.option("--orders", default=None, help="Comma-separated orders to measure (default: 2 to the store's).")
@click.option("--protocol", default="document", show_default=True, type=click.Choice(["document", "stream"]),
              help="document: prompt with each page's first k tokens; stream: at random positions inside pages.")
@click.option("--free-tokens", default=5000, show_default=True, type=click.IntRange(min=0),
              help="Also generate this many tokens freely and measure what they copy (0: skip).")
@click.option("--method", default=None, type=METHODS, help=METHOD_HELP)
@click.option("--seed", default=0, show_default=True, type=int)
@store_options
@json_option
@data_errors
def recall_command(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links, prefix, continuation,
                   sample, orders, protocol, free_tokens, method, seed, store, db, as_json):
    """How much of its training text SOURCE... the generator gives back word for word.

    Prompted extraction (Carlini et al. 2022): a page is extractable when greedy decoding
    after its first k tokens reproduces the next m exactly.
    """
    from accum.pages import Page

    markov = open_store(store, db).generator(whole=True)
    texts = [r.text for r in read_sources(sources, fmt, label, text_field, url_field, max_page_bytes, follow_links)
             if isinstance(r, Page) and r.text.strip()]
    if not texts:
        raise click.ClickException("no readable page in the sources")
    try:
        order_list = None if orders is None else [int(o) for o in orders.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {orders!r}", param_hint="--orders")
    results = [r.to_dict() for r in markov.recall(texts, prefix=prefix, continuation=continuation, sample=sample,
                                                   seed=seed, orders=order_list, method=method, protocol=protocol)]
    free = None
    if free_tokens:
        markov.index_text(texts)
        free = markov.free_recall(n_tokens=free_tokens, seed=seed, method=method)
    if as_json:
        emit_json({"pages": len(texts), "recall": results, "free_generation": free,
                   "parameters": markov.parameters()})
        return
    click.echo(f"prompted extraction on {len(texts):,} pages ({protocol} protocol, k = {prefix}, m = {continuation})")
    click.echo(f"{'order':>5} {'samples':>8} {'extractable':>11} {'95% interval':>15} {'mean match':>10} "
               f"{'parameters':>11} {'per M params':>12}")
    for r in results:
        click.echo(f"{r['order']:>5} {r['samples']:>8,} {r['fraction']:>11.1%} "
                   f"{r['ci95_low']:>7.1%}-{r['ci95_high']:<7.1%} {r['mean_match']:>10.1f} {r['parameters']:>11,} "
                   f"{r['fraction_per_million_parameters']:>12.4f}")
    if free:
        click.echo(f"free generation of {free_tokens:,} tokens: " + ", ".join(
            f"{k.replace('_', ' ')} {v:.3g}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}"
            for k, v in free.items() if not isinstance(v, (list, dict))))
