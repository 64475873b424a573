"""Run x86-64 functions of this process in an emulated CPU: Bochs, through bochscpu-python.

The emulated CPU shares the process's memory: every readable page of the process is a guest
physical page backed by the host page at the same address, and the guest's page tables map each
virtual address to it, so emulated code reads and writes the process's arrays in place and calls
into its libraries (libc, libgomp) as native code would.  A system call made by emulated code
(a futex wake, an mmap for a large malloc) is carried out on the host, then the guest goes on.

The limits, each checked where it can be:
- one thread: a system call that creates or ends a thread or process raises RuntimeError;
- memory mapped during the emulated call is seen after the mmap, mremap or brk that made it;
- lazy symbol binding must be off (LD_BIND_NOW=1 before the process starts): glibc's lazy
  resolver saves the vector registers with xsavec into a buffer sized for the host CPU, which is
  too small for the emulated CPU's AVX-512 state;
- exception flags: the guest's MXCSR flags are raised on the host after each call (feraiseexcept),
  so tests that read the floating-point environment see what the emulated code raised.
"""
import ctypes
import threading

import bochscpu
import bochscpu.cpu
import bochscpu.memory

PAGE = 4096
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# clone, fork, vfork, exit, exit_group, clone3
_SYS_THREADS_AND_PROCESSES = (56, 57, 58, 60, 231, 435)
_SYS_MMAP, _SYS_MREMAP, _SYS_BRK = 9, 25, 12
_SYS_ARCH_PRCTL, _ARCH_GET_FS = 158, 0x1003
# int3 in user mode with no interrupt table: #GP with the error code of IDT vector 3
_GP, _INT3_THROUGH_IDT = 13, 3 * 8 + 2
_PF = 14


def loaded_regions():
    """The process's mappings: (start, end, permissions, path or "") from /proc/self/maps."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            yield lo, hi, fields[1], fields[5].strip() if len(fields) > 5 else ""


def _fs_base():
    """The calling thread's TLS base, which the guest needs for errno, libgomp's state, ..."""
    value = ctypes.c_uint64()
    if _libc.syscall(_SYS_ARCH_PRCTL, _ARCH_GET_FS, ctypes.byref(value)) != 0:
        raise OSError(ctypes.get_errno(), "arch_prctl(ARCH_GET_FS) failed")
    return value.value


def _segment(selector, attr, base=0):
    seg = bochscpu.Segment()
    seg.base, seg.limit, seg.selector = base, 0xFFFFFFFF, selector
    seg.attr, seg.present = attr, True
    return seg


def _user_code_segment():
    flags = bochscpu.cpu.SegmentFlags()
    flags.A = flags.R = flags.E = flags.S = flags.P = flags.L = True
    flags.DPL = 3
    return _segment(0x33, int(flags))


class Emulator:
    """One emulated CPU that runs functions of this process: ``Emulator().call(address, *args)``."""

    def __init__(self):
        self.session = bochscpu.Session()
        self.session.missing_page_handler = self._missing_page
        self._next_gpa = 0x100000
        self._mapped = set()        # host pages mapped into the guest
        self._regions_seen = set()  # (start, end) of mappings whose pages all are
        self._tables = {}           # (level, address prefix) -> (host page, guest physical page)
        self._pml4 = self._table(4, 0)
        self._stack = ctypes.create_string_buffer(1 << 20)
        # the page that calls return to (and the syscall entry point): all int3
        self._trap_buffer = ctypes.create_string_buffer(2 * PAGE)
        self._trap = (ctypes.addressof(self._trap_buffer) + PAGE - 1) & ~(PAGE - 1)
        ctypes.memset(self._trap, 0xCC, PAGE)
        self._syscall_entry = self._trap + 64
        self.calls = 0
        self.syscalls = {}          # number -> times carried out on the host
        self._stubs = _StubPage()   # host functions the guest calls natively (route_to_host)
        self._stop = None
        self._lock = threading.Lock()  # one CPU, one stack: one call at a time

    # ---- memory ------------------------------------------------------------------------------
    def _missing_page(self, gpa):
        raise RuntimeError("the guest touched unmapped physical page %#x" % gpa)

    def _new_gpa(self):
        gpa = self._next_gpa
        self._next_gpa += PAGE
        return gpa

    def _table(self, level, prefix):
        key = (level, prefix)
        if key not in self._tables:
            hva = bochscpu.memory.allocate_host_page()
            ctypes.memset(hva, 0, PAGE)
            gpa = self._new_gpa()
            bochscpu.memory.page_insert(gpa, hva)
            self._tables[key] = (hva, gpa)
        return self._tables[key]

    def _map_page(self, va):
        gpa = self._new_gpa()
        bochscpu.memory.page_insert(gpa, va)
        self._mapped.add(va)
        table = self._pml4[0]
        for level in (3, 2, 1):  # PML4 -> PDPT -> PD -> PT, present + writable + user
            child_hva, child_gpa = self._table(level, va >> (12 + 9 * level))
            index = (va >> (12 + 9 * level)) & 511
            ctypes.c_uint64.from_address(table + 8 * index).value = child_gpa | 7
            table = child_hva
        ctypes.c_uint64.from_address(table + 8 * ((va >> 12) & 511)).value = gpa | 7

    def map_process(self):
        """Map every readable page of the process not mapped yet."""
        for lo, hi, perms, path in loaded_regions():
            special = path in ("[vvar]", "[vvar_vclock]", "[vsyscall]")
            if perms[0] != "r" or special or hi > 1 << 47 or lo == self._stubs.address:
                continue
            if (lo, hi) in self._regions_seen:
                continue
            for va in range(lo, hi, PAGE):
                if va not in self._mapped:
                    self._map_page(va)
            self._regions_seen.add((lo, hi))

    # ---- running -----------------------------------------------------------------------------
    def _initial_state(self, fn, args):
        state = bochscpu.State()
        bochscpu.cpu.set_long_mode(state)
        state.cr0 |= 1 << 1                                # MP: SSE/AVX instructions allowed
        state.cr4 |= (1 << 9) | (1 << 10) | (1 << 18)      # OSFXSR, OSXMMEXCPT, OSXSAVE
        state.xcr0 = 0xE7                                  # x87, SSE, AVX, opmask, ZMM state
        state.cr3 = self._pml4[1]
        state.mxcsr = 0x1F80                               # all exceptions masked, flags clear
        state.fpcw = 0x37F
        state.lstar = self._syscall_entry
        state.star = (0x10 << 32) | (0x23 << 48)
        state.sfmask = 0
        state.cs = _user_code_segment()
        state.ss = _segment(0x2B, 0xCF3)
        state.ds = state.es = state.gs = _segment(0, 0xCF3)
        state.fs = _segment(0, 0xCF3, _fs_base())
        top = (ctypes.addressof(self._stack) + len(self._stack) - PAGE) & ~15
        for i, value in enumerate(args[6:]):               # arguments past the sixth: the stack
            ctypes.c_uint64.from_address(top + 8 * i).value = value & (2**64 - 1)
        ctypes.c_uint64.from_address(top - 8).value = self._trap  # the return address
        state.rsp = top - 8
        state.rip = fn
        state.rflags = 0x202
        for reg, value in zip(("rdi", "rsi", "rdx", "rcx", "r8", "r9"), args):
            setattr(state, reg, value & (2**64 - 1))
        return state

    def _on_exception(self, session, cpu_id, vector, error_code):
        if self._stop is None:          # the first one; what follows is its failed delivery
            self._stop = (vector, error_code, session.cpu.rip)
        session.stop()

    def call(self, fn, *args):
        """Run the function at address fn with integer / pointer arguments; return rax."""
        with self._lock:
            return self._call(fn, args)

    def _call(self, fn, args):
        self.map_process()
        state = self._initial_state(fn, args)
        hook = bochscpu.Hook()
        hook.exception = self._on_exception
        while True:
            self.session.cpu.state = state
            self._stop = None
            self.session.run([hook])
            state = self.session.cpu.state
            vector, code, rip = self._stop or (None, None, state.rip)
            if (vector, code) == (_GP, _INT3_THROUGH_IDT) and rip - self._trap in (0, 1):
                break
            if (vector, code) == (_GP, _INT3_THROUGH_IDT) and rip - self._syscall_entry in (0, 1):
                state = self._syscall(state)
                continue
            if vector == _PF and state.cr2 in self._stubs.functions:
                state = self._host_call(state, self._stubs.functions[state.cr2])
                continue
            raise RuntimeError("emulated code stopped by exception %s (error code %s) at rip %#x, "
                               "cr2 %#x" % (vector, code, rip, state.cr2))
        self.calls += 1
        flags = state.mxcsr & 0x3D      # IE, ZE, OE, UE, PE: the same bits as FE_* on x86-64
        if flags:
            _libc.feraiseexcept(flags)
        return state.rax

    def _syscall(self, state):
        """Carry out the guest's system call on the host and return the guest to after it."""
        number = state.rax
        if number in _SYS_THREADS_AND_PROCESSES:
            raise RuntimeError("emulated code made system call %d, which one emulated thread "
                               "cannot carry out" % number)
        args = [ctypes.c_long(ctypes.c_int64(v).value) for v in
                (state.rdi, state.rsi, state.rdx, state.r10, state.r8, state.r9)]
        result = _libc.syscall(ctypes.c_long(number), *args)
        if result == -1:
            result = -ctypes.get_errno()
        self.syscalls[number] = self.syscalls.get(number, 0) + 1
        if number in (_SYS_MMAP, _SYS_MREMAP, _SYS_BRK):
            self.map_process()
        state.rax = result & (2**64 - 1)
        state.rip = state.rcx           # syscall saved the return address in rcx ...
        state.rflags = state.r11 | 0x2  # ... and the flags in r11
        state.cs = _user_code_segment()
        state.ss = _segment(0x2B, 0xCF3)
        return state

    # ---- host functions ------------------------------------------------------------------------
    def route_to_host(self, library, functions):
        """Make the guest's calls from library (a path) to functions run natively.

        functions: {address: ctypes function}.  The library's resolved import slots (its GOT) that
        hold one of the addresses are pointed at a stub on a page the guest does not map: natively
        the stub jumps on to the function, in the guest its fetch faults and the call is made on
        the host.  Needed for malloc and free: emulated code inside glibc's allocator would hold
        its lock across a system call, where the host (Python, Bochs) allocates too.
        """
        stubs = {target: self._stubs.stub_for(target, fn) for target, fn in functions.items()}
        return len(replace_words(library, stubs))

    def _host_call(self, state, function):
        args = (state.rdi, state.rsi, state.rdx, state.rcx, state.r8, state.r9)
        result = function(*args[:len(function.argtypes)])
        if function.restype is not None:
            state.rax = (result or 0) & (2**64 - 1)
        state.rip = ctypes.c_uint64.from_address(state.rsp).value  # and return to the caller
        state.rsp += 8
        return state


def replace_words(library, replace):
    """Overwrite each 64-bit word of library's loaded data (not code) that is a key of replace.

    library: the path of a loaded shared object; replace: {old value: new value}.  Made for
    function pointers in relocated tables and import slots, which are read-only after relocation
    (they are made writable).  Returns the set of old values found.
    """
    found = set()
    for lo, hi, perms, path in loaded_regions():
        if path != library or "x" in perms:
            continue
        words = (ctypes.c_uint64 * ((hi - lo) // 8)).from_address(lo)
        for i, word in enumerate(words):
            if word in replace:
                if _libc.mprotect(ctypes.c_void_p((lo + 8 * i) & ~(PAGE - 1)), PAGE, 3) != 0:
                    raise OSError(ctypes.get_errno(), "mprotect failed")
                words[i] = replace[word]
                found.add(word)
    return found


class _StubPage:
    """An executable page of `jmp [rip]; .quad target` stubs, one per routed host function."""

    _JMP_RIP = bytes([0xFF, 0x25, 0, 0, 0, 0])

    def __init__(self):
        mmap = _libc.mmap
        mmap.restype = ctypes.c_void_p
        mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                         ctypes.c_int, ctypes.c_long)
        address = mmap(None, PAGE, 7, 0x22, -1, 0)  # read, write, exec; private, anonymous
        if address in (None, 2**64 - 1):
            raise OSError(ctypes.get_errno(), "mmap of the stub page failed")
        self.address = address
        self.functions = {}         # stub address -> ctypes function
        self._by_target = {}

    def stub_for(self, target, function):
        if target not in self._by_target:
            stub = self.address + 16 * len(self._by_target)
            ctypes.memmove(stub, self._JMP_RIP + target.to_bytes(8, "little"), 14)
            self._by_target[target] = stub
            self.functions[stub] = function
        return self._by_target[target]
