"""Estimated Cortex-M4 and Cortex-M7 cycles of one model run, from its executed instruction stream.

**These are estimates, not measurements.** QEMU counts instructions exactly but has no notion of
cycles, so this module runs the same firmware ELF's ``pb_model_run_hooked`` once more under
`unicorn` (QEMU's CPU core as a library, an ARMv7E-M CPU), records which basic blocks execute
and how each one ends, decodes every block once with `capstone`, and prices the stream with a
timing model:

``cortex-m4`` (the Cortex-M4 TRM's instruction set summary, zero-wait-state memory)
  1 cycle per instruction, except: single loads (LDR/LDRB/LDRH/LDRSB/LDRSH/LDREX) 2, or 1 when
  they follow a single load whose destination is not in their address (pipelined); single stores
  with an immediate offset 1, with a register offset 2 (1 after a load); LDRD/STRD 3; LDM/STM/
  PUSH/POP 1 + N registers; SDIV/UDIV 12 (the TRM's worst case: the early exit is data dependent);
  a load or store whose address register the previous data-processing instruction wrote: +1;
  taken branches (B, BL, BX, BLX, CBZ/CBNZ, writes to PC, POP/LDM/LDR into PC) + P, TBB/TBH 2 + P,
  with P = 2 pipeline-refill cycles (the TRM gives 1 to 3, by target alignment and width; the
  result also carries the totals at P = 1 and P = 3).
``cortex-m7`` (a simplified in-order dual-issue model)
  Two neighbouring instructions issue together when the second neither reads nor writes a
  register (or the flags) the first writes, at most one of them is a load/store, at most one a
  multiply, the first is not a branch and neither is a multi-cycle instruction; a load's result
  used by the very next instruction costs +1; LDM/STM/PUSH/POP take ceil(N / 2) cycles (64-bit
  bus); SDIV/UDIV 12; every taken branch + 1 (assumes the branch predictor is right).

What both ignore: flash wait states and the ART/flash accelerator, caches and TCM placement
(M7), bus contention with DMA, unaligned-access penalties, IT folding (an IT costs 1) and
instructions skipped by a false IT condition (priced as executed), interrupts, the M7's
branch mispredictions and its load/store dual issue. Real boards report cycles from DWT CYCCNT
(``pbkit bench`` on hardware); this estimate is for the emulated boards, beside their exact
instruction counts.
"""

from __future__ import annotations

import bisect
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MODELS = ("cortex-m4", "cortex-m7")
#: Pipeline refill cycles after a taken branch on the M4 (the TRM: 1 to 3).
M4_REFILL = 2
DIVIDE_CYCLES = 12
# Unicorn memory for the call: stack, image, logits and the trap the function returns to.
SCRATCH_BASE = 0x6000_0000
SCRATCH_SIZE = 0x0004_0000
STACK_TOP = SCRATCH_BASE + 0x0003_0000
TRAP = SCRATCH_BASE + 0x0003_8000  # `bx lr` for the layer hook, then `b .` to return to
BX_LR, B_SELF = 0x4770, 0xE7FE
MAX_INSTRUCTIONS = 2_000_000_000


class CyclesUnavailableError(ImportError):
    """unicorn, capstone or pyelftools is not installed."""


class EstimateError(RuntimeError):
    """The ELF cannot be run (no pb_model_run_hooked, a fault in the emulated call, ...)."""


def _libraries():
    try:
        import capstone
        import unicorn
        from elftools.elf.elffile import ELFFile
    except ImportError as e:
        raise CyclesUnavailableError(
            f"estimated cycles need unicorn, capstone and pyelftools ({e.name} is missing): "
            "pip install -e '.[yardstick]'") from None
    return unicorn, capstone, ELFFile


# ---- the executed stream: basic blocks and how they end ------------------------------------


@dataclass
class Trace:
    """Executions of each basic block (address, bytes), split by whether the block was left by a
    jump elsewhere (``taken``) or by falling through; one Counter per layer (the hook's calls)."""

    layers: list[Counter] = field(default_factory=lambda: [Counter()])
    code: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (address, size) -> the block's bytes
    # Data reads (one per access: an LDRD is two, an LDM one per register) from the ELF's read-only segments,
    # the flash on a real board: its constant tables and weights. One count per layer.
    flash_reads: list[int] = field(default_factory=lambda: [0])


def _load_elf(uc, ELFFile, elf: Path) -> tuple[dict[str, int], list[tuple[int, str]], list[tuple[int, int]]]:
    from elftools.common.exceptions import ELFError

    if not elf.is_file():
        raise EstimateError(f"firmware ELF not found: {elf}")
    with open(elf, "rb") as f:
        try:
            ef = ELFFile(f)
        except ELFError as e:
            raise EstimateError(f"{elf} is not an ELF file ({e})") from None
        mapped: set[int] = set()
        read_only: list[tuple[int, int]] = []
        for seg in ef.iter_segments():
            if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
                continue
            if not seg["p_flags"] & 2:  # no PF_W: code and constants, in flash on the board
                read_only.append((seg["p_vaddr"], seg["p_vaddr"] + seg["p_memsz"] - 1))
            start = seg["p_vaddr"] & ~0xFFF
            end = (seg["p_vaddr"] + seg["p_memsz"] + 0xFFF) & ~0xFFF
            for page in range(start, end, 0x1000):
                if page not in mapped:
                    uc.mem_map(page, 0x1000)
                    mapped.add(page)
            uc.mem_write(seg["p_vaddr"], seg.data())  # .data at its run address: the state after reset
        symbols: dict[str, int] = {}
        functions: list[tuple[int, str]] = []
        symtab = ef.get_section_by_name(".symtab")
        for sym in symtab.iter_symbols() if symtab else ():
            if sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT") and sym.name:
                symbols[sym.name] = sym["st_value"]
                if sym["st_info"]["type"] == "STT_FUNC":
                    functions.append((sym["st_value"] & ~1, sym.name))
    return symbols, sorted(functions), read_only


def trace_model_run(elf: Path | str, image: bytes, cpu: str, num_classes: int = 256) -> tuple[Trace, list, dict]:
    """Runs ``pb_model_run_hooked(image, logits, &class, hook, 0)`` of ``elf`` in unicorn and returns the
    (trace, logits, function table). ``cpu``: ``cortex-m4`` or ``cortex-m7``."""
    unicorn, _, ELFFile = _libraries()
    from unicorn import arm_const

    models = {"cortex-m4": arm_const.UC_CPU_ARM_CORTEX_M4, "cortex-m7": arm_const.UC_CPU_ARM_CORTEX_M7}
    if cpu not in models:
        raise ValueError(f"unknown cpu {cpu!r}; choose one of {', '.join(models)}")
    uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(models[cpu])
    symbols, functions, read_only = _load_elf(uc, ELFFile, Path(elf))
    entry = symbols.get("pb_model_run_hooked")
    if entry is None:
        raise EstimateError(f"{elf}: no pb_model_run_hooked symbol (not a pbkit firmware ELF)")
    uc.mem_map(SCRATCH_BASE, SCRATCH_SIZE)
    image_at, logits_at, class_at = SCRATCH_BASE, SCRATCH_BASE + 0x1_0000, SCRATCH_BASE + 0x1_1000
    uc.mem_write(image_at, bytes(image))
    uc.mem_write(TRAP, struct.pack("<HH", BX_LR, B_SELF))
    hook_at, done_at = TRAP, TRAP + 2
    regs = {arm_const.UC_ARM_REG_R0: image_at, arm_const.UC_ARM_REG_R1: logits_at,
            arm_const.UC_ARM_REG_R2: class_at, arm_const.UC_ARM_REG_R3: hook_at | 1,
            arm_const.UC_ARM_REG_SP: STACK_TOP - 8, arm_const.UC_ARM_REG_LR: done_at | 1}
    for reg, value in regs.items():
        uc.reg_write(reg, value)
    uc.mem_write(STACK_TOP - 8, struct.pack("<II", 0, 0))  # the fifth argument, context = NULL

    trace = Trace()
    state = {"prev": None, "layer": trace.layers[0]}

    def on_block(uc_, address, size, _user):
        prev = state["prev"]
        if prev is not None:
            state["layer"][(prev[0], prev[1], address != prev[0] + prev[1])] += 1
        if address == hook_at:  # a layer ended; the hook's own `bx lr` is not the model's
            state["layer"] = Counter()
            trace.layers.append(state["layer"])
            trace.flash_reads.append(0)
            state["prev"] = None
            return
        if (address, size) not in trace.code:
            trace.code[(address, size)] = bytes(uc_.mem_read(address, size))
        state["prev"] = (address, size)

    def on_flash_read(uc_, access, address, size, value, _user):
        trace.flash_reads[-1] += 1

    uc.hook_add(unicorn.UC_HOOK_BLOCK, on_block)
    for begin, end in read_only:
        uc.hook_add(unicorn.UC_HOOK_MEM_READ, on_flash_read, begin=begin, end=end)
    try:
        uc.emu_start(entry | 1, done_at, count=MAX_INSTRUCTIONS)
    except unicorn.UcError as e:
        pc = uc.reg_read(arm_const.UC_ARM_REG_PC)
        raise EstimateError(f"{elf}: the emulated pb_model_run_hooked stopped at {pc:#010x}: {e}") from None
    prev = state["prev"]
    if prev is not None:
        state["layer"][(prev[0], prev[1], False)] += 1
    if len(trace.layers) > 1:  # the return after the last hook belongs to the last layer
        trace.layers[-2].update(trace.layers.pop())
        after = trace.flash_reads.pop()  # popped first: `a[-2] += a.pop()` would add to the wrong element
        trace.flash_reads[-1] += after
    status = uc.reg_read(arm_const.UC_ARM_REG_R0)
    if status != 0:
        raise EstimateError(f"{elf}: pb_model_run_hooked returned {status - (1 << 32) if status >> 31 else status}")
    logits = list(struct.unpack(f"<{num_classes}i", uc.mem_read(logits_at, 4 * num_classes)))
    return trace, logits, {"functions": functions}


# ---- the timing models -----------------------------------------------------------------------

_SINGLE_LOADS = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrexb", "ldrexh", "ldrt", "ldrbt", "ldrht"}
_SINGLE_STORES = {"str", "strb", "strh", "strex", "strexb", "strexh", "strt", "strbt", "strht"}
_MULTI = {"ldm", "ldmia", "ldmfd", "ldmdb", "stm", "stmia", "stmea", "stmdb", "stmfd", "push", "pop"}
_DOUBLE = {"ldrd", "strd"}
_DIVIDE = {"sdiv", "udiv"}
_TABLE_BRANCH = {"tbb", "tbh"}


def _base(mnemonic: str) -> str:
    """The operation without width qualifier or condition code: 'ldr.w' -> 'ldr', 'bne' -> 'b'."""
    m = mnemonic.split(".")[0].lower()
    for cc in ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"):
        if m.endswith(cc) and m[:-2] in {"b", "bx", "bl", "blx"}:
            return m[:-2]
    return m


@dataclass(frozen=True)
class Insn:
    """What the timing models need to know about one decoded instruction."""

    op: str
    reads: frozenset
    writes: frozenset
    address_regs: frozenset  # registers that form a load/store address
    nregs: int  # registers moved by LDM/STM/PUSH/POP
    writes_pc: bool
    conditional_branch: bool
    is_branch: bool
    is_multiply: bool
    imm_offset_store: bool


def _decode(capstone, code: bytes, address: int) -> list[Insn]:
    from capstone import arm as arm_c

    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    md.detail = True
    out = []
    for i in md.disasm(code, address):
        op = _base(i.mnemonic)
        reads, writes = (frozenset(i.reg_name(r) for r in rs) for rs in i.regs_access())
        if i.update_flags:
            writes = writes | {"flags"}
        if i.cc not in (arm_c.ARM_CC_AL, arm_c.ARM_CC_INVALID):
            reads = reads | {"flags"}
        address_regs: set[str] = set()
        imm_store = False
        for operand in i.operands:
            if operand.type == arm_c.ARM_OP_MEM:
                for reg in (operand.mem.base, operand.mem.index):
                    if reg:
                        address_regs.add(i.reg_name(reg))
                imm_store = operand.mem.index == 0
        regs_moved = sum(1 for o in i.operands if o.type == arm_c.ARM_OP_REG) - (0 if op in ("push", "pop") else 1)
        writes_pc = "pc" in writes
        is_branch = op in {"b", "bl", "bx", "blx", "cbz", "cbnz"} | _TABLE_BRANCH or writes_pc
        out.append(Insn(op=op, reads=reads, writes=writes, address_regs=frozenset(address_regs),
                        nregs=max(regs_moved, 1), writes_pc=writes_pc,
                        conditional_branch=is_branch and (op in ("cbz", "cbnz") or i.cc not in (
                            arm_c.ARM_CC_AL, arm_c.ARM_CC_INVALID)),
                        is_branch=is_branch, is_multiply=("mul" in op or "mla" in op or "mls" in op
                                                          or op.startswith(("smla", "smul", "smua", "smus", "smls",
                                                                            "smml", "umla", "umaa"))),
                        imm_offset_store=imm_store))
    return out


def _is_memory(ins: Insn) -> bool:
    return ins.op in _SINGLE_LOADS | _SINGLE_STORES | _MULTI | _DOUBLE


def _m4_block(insns: list[Insn]) -> int:
    """Cycles of a block under the M4 model, the refill after a taken branch aside (see :func:`_price`).
    A branch inside a block (one an IT condition skipped) is priced as not taken."""
    cycles = 0
    prev: Insn | None = None
    for ins in insns:
        op = ins.op
        if op in _SINGLE_LOADS:
            c = 1 if prev is not None and prev.op in _SINGLE_LOADS and not (prev.writes & ins.address_regs) else 2
        elif op in _SINGLE_STORES:
            c = 1 if ins.imm_offset_store or (prev is not None and prev.op in _SINGLE_LOADS) else 2
        elif op in _DOUBLE:
            c = 3
        elif op in _MULTI:
            c = 1 + ins.nregs
        elif op in _DIVIDE:
            c = DIVIDE_CYCLES
        elif op in _TABLE_BRANCH:
            c = 2
        else:
            c = 1
        if (_is_memory(ins) and prev is not None and not _is_memory(prev) and not prev.is_branch
                and prev.writes & ins.address_regs):
            c += 1  # address from the previous data-processing result: no forwarding path
        if ins.writes_pc and op in _SINGLE_LOADS:
            c = 2  # LDR pc: 2 + P
        cycles += c
        prev = ins
    return cycles


def _m7_block(insns: list[Insn]) -> int:
    """Cycles of a block under the simplified dual-issue model, taken-branch bubble aside."""
    cycles = 0
    k = 0
    n = len(insns)
    while k < n:
        ins = insns[k]
        if ins.op in _MULTI:
            c, single = max(1, math.ceil(ins.nregs / 2)), True
        elif ins.op in _DIVIDE:
            c, single = DIVIDE_CYCLES, True
        elif ins.op in _DOUBLE:
            c, single = 1, True
        else:
            c, single = 1, ins.is_branch
        nxt = insns[k + 1] if k + 1 < n else None
        if nxt is not None and ins.op in _SINGLE_LOADS and ins.writes & nxt.reads:
            c += 1  # load-to-use
        if (not single and nxt is not None and nxt.op not in _MULTI | _DIVIDE | _DOUBLE
                and not (ins.writes & (nxt.reads | nxt.writes))
                and not (_is_memory(ins) and _is_memory(nxt)) and not (ins.is_multiply and nxt.is_multiply)):
            k += 2  # the pair issues in one cycle
        else:
            k += 1
        cycles += c
    return cycles


@dataclass(frozen=True)
class BlockCost:
    instructions: int
    m4: int  # refills aside
    m7: int  # taken-branch bubble aside
    last: Insn  # how the block ends
    function: str


Block = tuple[int, int]  # (address, size) of a basic block


def block_costs(code: dict[Block, bytes], functions: list[tuple[int, str]]) -> dict[Block, BlockCost]:
    """Each basic block ((address, size) -> bytes) decoded once and priced by both models."""
    _, capstone, _ = _libraries()
    starts = [a for a, _ in functions]
    costs = {}
    for (address, size), data in code.items():
        insns = _decode(capstone, data, address)
        if not insns:
            raise EstimateError(f"capstone could not decode the block at {address:#010x}")
        k = bisect.bisect_right(starts, address) - 1
        costs[(address, size)] = BlockCost(instructions=len(insns), m4=_m4_block(insns), m7=_m7_block(insns),
                                   last=insns[-1], function=functions[k][1] if k >= 0 else "?")
    return costs


def _price(counter: Counter, costs: dict[Block, BlockCost], refill: int) -> dict:
    instructions = m4_base = refills = m7 = 0
    per_function: Counter = Counter()
    for (address, size, jumped), n in counter.items():
        cost = costs[(address, size)]
        instructions += n * cost.instructions
        end = cost.last
        # An unconditional branch always refills; a conditional one when the next block is not the fall-through.
        taken = end.is_branch and (jumped or not end.conditional_branch)
        m4_base += n * cost.m4
        refills += n * taken
        m7 += n * (cost.m7 + (1 if taken else 0))
        per_function[cost.function] += n * cost.instructions
    return {"instructions": instructions, "m4": m4_base + refill * refills, "m4_p1": m4_base + refills,
            "m4_p3": m4_base + 3 * refills, "m7": m7, "taken_branches": refills, "per_function": per_function}


def estimate_cycles(elf: Path | str, image: bytes, cpu: str, num_classes: int = 256) -> dict:
    """Estimated cycles of one ``pb_model_run`` of ``elf`` on ``image`` (the bytes INFER sends).

    Returns ``instructions`` (executed in the emulated call: what QEMU's INFER counts, to the counter's
    few instructions), ``estimated_cycles`` for the board's core (``cpu``, its timing model above),
    ``estimated_cycles_m4`` and ``estimated_cycles_m7`` (both models on the same stream; the M4's at
    P = 2 with ``m4_range`` for P = 1..3), per-layer ``layers`` (the same keys, one per hook call),
    ``logits``, ``top_functions`` (instructions by function) and ``flash_data_reads`` (data reads from the
    ELF's read-only segments, in total and per layer: each can wait for the flash on a real board, which
    the timing models do not price).
    """
    trace, logits, info = trace_model_run(elf, image, cpu, num_classes)
    costs = block_costs(trace.code, info["functions"])
    layers = [_price(c, costs, M4_REFILL) for c in trace.layers]
    whole: Counter = Counter()
    for c in trace.layers:
        whole.update(c)
    total = _price(whole, costs, M4_REFILL)
    key = "m4" if cpu == "cortex-m4" else "m7"
    return {
        "estimate": True, "cpu": cpu, "timing_model": f"{cpu} (pbkit.host.cycles)",
        "instructions": total["instructions"], "estimated_cycles": total[key],
        "estimated_cycles_m4": total["m4"], "m4_range": [total["m4_p1"], total["m4_p3"]],
        "estimated_cycles_m7": total["m7"], "taken_branches": total["taken_branches"],
        "flash_data_reads": sum(trace.flash_reads),
        "layers": [{"instructions": r["instructions"], "estimated_cycles": r[key], "estimated_cycles_m4": r["m4"],
                    "estimated_cycles_m7": r["m7"], "flash_data_reads": reads}
                   for r, reads in zip(layers, trace.flash_reads, strict=True)],
        "logits": logits, "top_functions": total["per_function"].most_common(12),
    }


# ---- `pbkit profile` -------------------------------------------------------------------------


def flash_wait_bound(estimate: dict, flash_wait_states: int) -> int:
    """The M4 estimate if every data read from flash (``estimate_cycles``' ``flash_data_reads``) waited
    ``flash_wait_states`` cycles: an upper bound for those reads, beside the zero-wait-state estimate."""
    return estimate["estimated_cycles_m4"] + flash_wait_states * estimate["flash_data_reads"]


def attach_profile_estimate(result: dict, elf: Path | str, image: bytes, cpu: str, flash_wait_states: int = 0) -> dict:
    """Adds ``estimated_cycles`` to a `pbkit profile` result: both timing models on the first image's
    traced stream, per layer (named as the profile names them) and in total, with the data reads from flash and
    what they could add at the board's ``flash_wait_states`` if none hit the flash accelerator."""
    est = estimate_cycles(elf, image, cpu)
    names = [r["name"] for r in result.get("layers", [])]
    if len(names) != len(est["layers"]):
        names = [f"layer {i}" for i in range(len(est["layers"]))]
    result["estimated_cycles"] = {
        "estimate": True, "cpu": cpu, "images": 1, "instructions": est["instructions"],
        "cortex_m4": est["estimated_cycles_m4"], "cortex_m4_range": est["m4_range"],
        "cortex_m7": est["estimated_cycles_m7"],
        "flash_data_reads": est["flash_data_reads"], "flash_wait_states": flash_wait_states,
        "cortex_m4_all_flash_reads_wait": flash_wait_bound(est, flash_wait_states),
        "layers": [{"name": n, **r} for n, r in zip(names, est["layers"], strict=True)],
        "model": "pbkit.host.cycles: Cortex-M4 TRM cycles (zero wait states, P = 2) / simplified M7 dual issue",
    }
    return result


def format_profile_estimate(result: dict) -> str:
    """The estimated-cycles table `pbkit profile` prints under its measured one."""
    est = result["estimated_cycles"]
    head = f"{'layer':<17}{'instructions':>14}{'est. M4 cycles':>16}{'est. M7 cycles':>16}{'flash reads':>13}"
    lines = ["ESTIMATED cycles (a timing model over the traced instruction stream of image 0, not a measurement; "
             "see pbkit.host.cycles)", head, "-" * len(head)]
    for r in est["layers"]:
        lines.append(f"{r['name']:<17}{r['instructions']:>14,}{r['estimated_cycles_m4']:>16,}"
                     f"{r['estimated_cycles_m7']:>16,}{r['flash_data_reads']:>13,}")
    lines.append("-" * len(head))
    low, high = est["cortex_m4_range"]
    lines.append(f"{'total per image':<17}{est['instructions']:>14,}{est['cortex_m4']:>16,}{est['cortex_m7']:>16,}"
                 f"{est['flash_data_reads']:>13,}")
    lines.append(f"  M4 with 1..3 refill cycles per taken branch: {low:,} .. {high:,}")
    wait = est["flash_wait_states"]
    if wait:
        lines.append(f"  flash reads: data reads of constants (tables, weights) from flash; at this board's {wait} "
                     f"wait states, if the flash accelerator missed every one, the M4 estimate would grow to "
                     f"~{est['cortex_m4_all_flash_reads_wait']:,} (an upper bound for data reads)")
    else:
        lines.append("  flash reads: data reads of constants from the image's read-only memory (zero wait states on "
                     "this board)")
    return "\n".join(lines)
