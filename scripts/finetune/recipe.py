#!/usr/bin/env python3
"""flashdip's training recipe: `train` a small Llama model from scratch, or `finetune` LoRA adapters for a GGUF
model with DIP's masks in the forward pass. Step by step in scripts/finetune/README.md.

  python3 scripts/finetune/recipe.py train --work DIR [--steps N] [--seed S] ...
  python3 scripts/finetune/recipe.py finetune --base MODEL.gguf --text FILE --out ADAPTER.gguf [--density D] ...

GGUF files are read and written by the project's own TypeScript (scripts/finetune/export.ts, run with
npx ts-node), which also tokenizes with flashdip's tokenizer; this script trains (PyTorch, torch >= 1.13).
"""

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bridge  # noqa: E402
from llama import Config, Llama, split_density  # noqa: E402


def log(msg):
    print(msg, flush=True)


def export_ts(*args):
    """Runs a step of scripts/finetune/export.ts (npx ts-node, from the repository)."""
    cmd = ['npx', 'ts-node', '--transpile-only', os.path.join(HERE, 'export.ts')] + [str(a) for a in args]
    subprocess.run(cmd, cwd=REPO, check=True)


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


# ---------------------------------------------------------------------------------------------------------
# train: a model from scratch


def default_texts():
    data = os.path.join(REPO, '..', 'shared', 'data', 'text')
    return sorted(glob.glob(os.path.join(data, 'gutenberg', '*.txt'))) + [os.path.join(data, 'tinyshakespeare.txt')]


def split_texts(files, heldout_fraction, work):
    """Each file's last `heldout_fraction` (cut at a line start) is held out; returns (train, heldout) paths."""
    train, held = [], []
    for f in files:
        with open(f, encoding='utf-8') as fh:
            t = fh.read()
        cut = t.rfind('\n', 0, int(len(t) * (1 - heldout_fraction))) + 1
        train.append(t[:cut])
        held.append(t[cut:])
    tp, hp = os.path.join(work, 'train.txt'), os.path.join(work, 'heldout.txt')
    # Documents are separated by a blank line in the text files; the tokenizer gets each one with a BOS.
    with open(tp, 'w', encoding='utf-8') as fh:
        json.dump(train, fh)
    with open(hp, 'w', encoding='utf-8') as fh:
        fh.write('\n\n'.join(h.strip('\n') for h in held) + '\n')
    return tp, hp


def batches(tokens, batch, ctx, gen):
    n = len(tokens) - ctx - 1
    t = torch.from_numpy(tokens.astype(np.int64))
    while True:
        idx = torch.randint(0, n, (batch,), generator=gen)
        x = torch.stack([t[i:i + ctx + 1] for i in idx.tolist()])
        yield x[:, :-1], x[:, 1:]


def lr_at(step, steps, lr, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    p = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def save_model(model, cfg, ckpt_dir, vocab_path, step, loss, extra=None):
    tensors = [(n, p.detach().cpu().numpy()) for n, p in model.gguf_tensors()]
    meta = {'config': cfg.to_dict(), 'vocab': os.path.abspath(vocab_path), 'step': step, 'loss': loss}
    if extra:
        meta.update(extra)
    bridge.write_tensors(ckpt_dir, meta, tensors)


@torch.no_grad()
def eval_loss(model, tokens, ctx, sparsity=None, max_windows=64):
    model.eval()
    t = torch.from_numpy(tokens.astype(np.int64))
    total, n = 0.0, 0
    for i in range(0, min(len(t) - ctx - 1, max_windows * ctx), ctx):
        x = t[i:i + ctx + 1][None]
        logits = model(x[:, :-1], sparsity)
        total += torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction='sum').item()
        n += ctx
    model.train()
    return total / max(1, n)


def cmd_train(a):
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    os.makedirs(a.work, exist_ok=True)
    vocab_path = os.path.join(a.work, 'vocab.json')
    train_tok = os.path.join(a.work, 'train.i32')
    held_tok = os.path.join(a.work, 'heldout.i32')
    files = a.text or default_texts()
    if not os.path.exists(train_tok):
        tp, hp = split_texts(files, a.heldout, a.work)
        if not os.path.exists(vocab_path):
            from vocab import train_vocab
            with open(tp, encoding='utf-8') as fh:
                docs = json.load(fh)
            t0 = time.time()
            v = train_vocab(docs, a.vocab)
            with open(vocab_path, 'w', encoding='utf-8') as fh:
                json.dump(v, fh, ensure_ascii=False)
            log('vocab: %d tokens in %.1f s' % (len(v['tokens']), time.time() - t0))
        export_ts('tokenize', '--vocab', vocab_path, '--docs', tp, '--out', train_tok)
        export_ts('tokenize', '--vocab', vocab_path, '--text', hp, '--out', held_tok)
    train = bridge.read_tokens(train_tok)
    held = bridge.read_tokens(held_tok)
    with open(vocab_path, encoding='utf-8') as fh:
        n_vocab = len(json.load(fh)['tokens'])
    log('tokens: %d train, %d held out' % (len(train), len(held)))

    cfg = Config(dim=a.dim, layers=a.layers, heads=a.heads, kv_heads=a.kv_heads or a.heads, ffn=a.ffn, vocab=n_vocab,
                 ctx=a.ctx, tied=a.tied)
    model = Llama(cfg)
    gen = torch.Generator().manual_seed(a.seed)
    model.init_weights(gen)
    n_params = sum(p.numel() for p in model.parameters())
    log('model: %s, %d parameters' % (json.dumps(cfg.to_dict()), n_params))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    ckpt = os.path.join(a.work, 'ckpt')
    data = batches(train, a.batch, a.ctx, gen)
    t0 = time.time()
    ema = None
    last = min(a.steps, a.stop_at or a.steps)
    for step in range(last):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, a.steps, a.lr, a.warmup)
        x, y = next(data)
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 50 == 0 or step == a.steps - 1:
            log('step %d/%d loss %.4f (ema %.4f) lr %.2e %.1f s' % (step, a.steps, loss.item(), ema, opt.param_groups[0]['lr'],
                                                                  time.time() - t0))
        if (step + 1) % a.ckpt_every == 0 or step == last - 1:
            hl = eval_loss(model, held, a.ctx, max_windows=16)
            save_model(model, cfg, ckpt, vocab_path, step + 1, ema, {'heldout_loss': hl, 'seconds': time.time() - t0})
            log('checkpoint at step %d: held-out loss %.4f (ppl %.2f)' % (step + 1, hl, math.exp(hl)))
    if a.out:
        export_ts('write-model', '--dir', ckpt, '--out', a.out, '--type', a.type, '--name', a.name)
        log('wrote ' + a.out)


# ---------------------------------------------------------------------------------------------------------
# finetune: LoRA adapters for a GGUF model, trained with DIP's masks in the forward pass

LORA_TARGETS = ('attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output')


def load_base(d):
    """A Llama module from a tensor set that `export.ts dump` wrote."""
    meta, t = bridge.read_tensors(d)
    cfg = Config.from_dict(meta['config'])
    model = Llama(cfg)
    params = dict(model.gguf_tensors())
    missing = set(params) - set(t)
    if missing:
        raise ValueError('%s: the model has no %s (the recipe needs the standard llama layout, not a DIP-layout '
                         'file)' % (d, ', '.join(sorted(missing))))
    for name, p in params.items():
        a = torch.from_numpy(t[name])
        if tuple(a.shape) != tuple(p.shape):
            raise ValueError('%s: %s has shape %s, expected %s' % (d, name, tuple(a.shape), tuple(p.shape)))
        p.data.copy_(a)
    return cfg, model


def attach_loras(model, targets, rank, alpha, seed):
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    out = []
    for name, lin in model.linears():
        kind = 'output' if name == 'output.weight' else name.split('.')[2]
        if kind in targets:
            lin.add_lora(rank, alpha, gen)
            out.append((name, lin))
    if not out:
        raise ValueError('the model has none of the targeted matrices %s' % ','.join(targets))
    return out


def load_loras(model, d):
    """Attaches the LoRA pairs of a tensor set (as finetune writes it) to the model."""
    meta, t = bridge.read_tensors(d)
    lins = dict(model.linears())
    for name in t:
        if not name.endswith('.lora_a'):
            continue
        base = name[:-len('.lora_a')]
        a, b = t[name], t[base + '.lora_b']
        lin = lins[base]
        lin.lora_a = torch.nn.Parameter(torch.from_numpy(a))
        lin.lora_b = torch.nn.Parameter(torch.from_numpy(b))
        lin.lora_scale = float(meta['alpha']) / a.shape[0]
    return meta


def sparsity_of(a):
    if a.keep_x is not None or a.keep_h is not None:
        return (a.keep_x if a.keep_x is not None else 1.0, a.keep_h if a.keep_h is not None else 1.0)
    if a.density is not None and a.density < 1:
        return split_density(a.density)
    return None


def cmd_finetune(a):
    torch.set_num_threads(a.threads)
    seed_all(a.seed)
    os.makedirs(a.work, exist_ok=True)
    base_dir = os.path.join(a.work, 'base')
    tok_path = os.path.join(a.work, 'text.i32')
    export_ts('dump', '--model', a.base, '--out', base_dir)
    export_ts('tokenize', '--vocab', a.base, '--text', a.text, '--out', tok_path)
    cfg, model = load_base(base_dir)
    tokens = bridge.read_tokens(tok_path)
    ctx = min(a.ctx, cfg.ctx)
    if len(tokens) < ctx + 2:
        raise ValueError('%s: %d tokens, fewer than a window of %d' % (a.text, len(tokens), ctx + 1))
    targets = a.targets.split(',')
    for t in targets:
        if t not in LORA_TARGETS:
            raise ValueError('unknown target %s (targets: %s)' % (t, ','.join(LORA_TARGETS)))
    alpha = a.alpha if a.alpha is not None else float(a.rank)
    loras = attach_loras(model, targets, a.rank, alpha, a.seed)
    sp = sparsity_of(a)
    log('finetune: %d tokens, %d LoRA pairs of rank %d (alpha %g), masks %s' % (
        len(tokens), len(loras), a.rank, alpha, 'off (dense)' if sp is None else 'keep_x %.4f keep_h %.4f' % sp))
    params = [p for _, lin in loras for p in (lin.lora_a, lin.lora_b)]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(a.seed)
    data = batches(tokens, a.batch, ctx, gen)
    t0 = time.time()
    for step in range(a.steps):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, a.steps, a.lr, min(a.warmup, max(1, a.steps // 10)))
        x, y = next(data)
        logits = model(x, sp)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == a.steps - 1:
            log('step %d/%d loss %.4f %.1f s' % (step, a.steps, loss.item(), time.time() - t0))
    seconds = time.time() - t0
    lora_dir = os.path.join(a.work, 'lora')
    tensors = []
    for name, lin in loras:
        tensors.append((name + '.lora_a', lin.lora_a.detach().numpy()))
        tensors.append((name + '.lora_b', lin.lora_b.detach().numpy()))
    bridge.write_tensors(lora_dir, {'alpha': alpha, 'rank': a.rank, 'sparsity': sp, 'steps': a.steps,
                                    'seconds': seconds, 'text': os.path.abspath(a.text)}, tensors)
    export_ts('write-adapter', '--dir', lora_dir, '--base', a.base, '--out', a.out)
    log('wrote %s (%d steps in %.1f s)' % (a.out, a.steps, seconds))


def cmd_logits(a):
    """The recipe model's logits for a token sequence (all positions), for checking flashdip against it."""
    torch.set_num_threads(a.threads)
    cfg, model = load_base(a.base_dir)
    if a.lora_dir:
        load_loras(model, a.lora_dir)
    ids = torch.tensor([[int(x) for x in a.tokens.split(',')]], dtype=torch.int64)
    with torch.no_grad():
        out = model(ids, sparsity_of(a))[0].numpy().astype('<f4')
    out.tofile(a.out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='mode', required=True)
    t = sub.add_parser('train', help='train a small Llama model from scratch')
    t.add_argument('--work', required=True, help='working directory (vocab, tokens, checkpoint)')
    t.add_argument('--text', nargs='*', help='training text files (default: ../shared/data/text Gutenberg + tinyshakespeare)')
    t.add_argument('--heldout', type=float, default=0.05, help='fraction of each file held out (its end)')
    t.add_argument('--vocab', type=int, default=1024)
    t.add_argument('--dim', type=int, default=128)
    t.add_argument('--layers', type=int, default=5)
    t.add_argument('--heads', type=int, default=4)
    t.add_argument('--kv-heads', type=int, default=0)
    t.add_argument('--ffn', type=int, default=384)
    t.add_argument('--ctx', type=int, default=128)
    t.add_argument('--tied', action='store_true')
    t.add_argument('--batch', type=int, default=16)
    t.add_argument('--steps', type=int, default=4000)
    t.add_argument('--stop-at', type=int, default=0,
                   help='stop after this many steps (the schedule still spans --steps): reproduces a partial run')
    t.add_argument('--warmup', type=int, default=100)
    t.add_argument('--lr', type=float, default=3e-3)
    t.add_argument('--ckpt-every', type=int, default=200)
    t.add_argument('--seed', type=int, default=1)
    t.add_argument('--threads', type=int, default=1)
    t.add_argument('--out', help='write the final GGUF here')
    t.add_argument('--type', default='f32', choices=['f32', 'q8_0'])
    t.add_argument('--name', default='flashdip-demo')
    f = sub.add_parser('finetune', help='train LoRA adapters for a GGUF model, with DIP masks in the forward pass')
    f.add_argument('--base', required=True, help='the base model GGUF (llama arch, standard layout)')
    f.add_argument('--text', required=True, help='training text (UTF-8)')
    f.add_argument('--out', required=True, help='the adapter GGUF to write')
    f.add_argument('--work', required=True, help='working directory (dumped base, tokens, LoRA tensors)')
    f.add_argument('--density', type=float, help="MLP density rho: DIP masks split as flashdip's --density")
    f.add_argument('--keep-x', type=float, help='DIP keep fraction of the MLP input (instead of --density)')
    f.add_argument('--keep-h', type=float, help='DIP keep fraction of the MLP hidden units')
    f.add_argument('--rank', type=int, default=8)
    f.add_argument('--alpha', type=float, help='adapter.lora.alpha (default: the rank)')
    f.add_argument('--targets', default='attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down')
    f.add_argument('--steps', type=int, default=300)
    f.add_argument('--batch', type=int, default=8)
    f.add_argument('--ctx', type=int, default=256)
    f.add_argument('--lr', type=float, default=2e-3)
    f.add_argument('--warmup', type=int, default=20)
    f.add_argument('--seed', type=int, default=1)
    f.add_argument('--threads', type=int, default=1)
    g = sub.add_parser('logits', help="the recipe model's logits for tokens (checks against flashdip)")
    g.add_argument('--base-dir', required=True, help='a tensor set from export.ts dump')
    g.add_argument('--lora-dir', help='a LoRA tensor set from finetune (WORK/lora)')
    g.add_argument('--tokens', required=True, help='comma-separated token ids')
    g.add_argument('--density', type=float)
    g.add_argument('--keep-x', type=float)
    g.add_argument('--keep-h', type=float)
    g.add_argument('--threads', type=int, default=1)
    g.add_argument('--out', required=True, help='float32 [tokens][vocab] output file')
    a = p.parse_args(argv)
    if a.mode == 'train':
        cmd_train(a)
    elif a.mode == 'finetune':
        cmd_finetune(a)
    else:
        cmd_logits(a)


if __name__ == '__main__':
    main()
