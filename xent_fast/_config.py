"""``show_config``: the CPU, the instruction set, the tuning row and the OpenMP runtime in use."""
from ._kernels import ENVIRONMENT
from ._kernels import config as _kernel_config
from ._version import __version__


_TUNING_KEYS = ("name", "source", "prefer_isa", "across_f32", "across_grad_f32", "across_f64",
                "across_grad_f64", "prefetch_row_max_bytes")


# _OPENMP dates of the OpenMP specifications
_OPENMP_VERSIONS = {200505: "2.5", 200805: "3.0", 201107: "3.1", 201307: "4.0", 201511: "4.5",
                    201811: "5.0", 202011: "5.1", 202111: "5.2", 202411: "6.0"}


def _openmp_runtimes():
    """The OpenMP runtimes loaded in this process, as threadpoolctl sees them (if installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{"runtime": pool.get("prefix"), "version": pool.get("version"),
             "filepath": pool.get("filepath"), "num_threads": pool.get("num_threads")}
            for pool in threadpool_info() if pool.get("user_api") == "openmp"]


def _config_dicts():
    c = _kernel_config()
    row = c["tuning"]
    runtimes = _openmp_runtimes()
    return {
        "xent_fast": {"version": __version__},
        "cpu": {key: c[key] for key in ("vendor", "brand", "family", "model", "stepping",
                                        "features")},
        "isa": {"in_use": c["isa"], "available": c["isa_available"],
                "XENT_FAST_ISA": ENVIRONMENT["XENT_FAST_ISA"]},
        "tuning": dict({key: row[key] for key in _TUNING_KEYS},
                       XENT_FAST_TUNE=ENVIRONMENT["XENT_FAST_TUNE"]),
        "openmp": {"compiled_with": c["openmp"] or None, "default_threads": c["default_threads"],
                   "runtimes": runtimes if runtimes is not None else "unknown"},
    }


def _describe_compiled(date):
    if not date:
        return "no OpenMP (one thread)"
    version = _OPENMP_VERSIONS.get(date)
    return f"OpenMP {version} (_OPENMP {date})" if version else f"_OPENMP {date}"


def _describe_runtimes(runtimes):
    if runtimes == "unknown":
        return ["unknown (install threadpoolctl to identify it)"]
    if not runtimes:
        return ["none loaded"]
    return [f"{r['runtime']} {r['version'] or '(version unknown)'} ({r['filepath']})"
            for r in runtimes]


def show_config(mode="stdout"):
    """Show the CPU, the instruction set, the kernels' tuning and the OpenMP runtime in use.

    Everything here is chosen once, when xent_fast is imported: the instruction set from the CPU's
    features (or ``XENT_FAST_ISA``), the tuning row from the CPU's vendor, family and model and the
    instruction set (``XENT_FAST_TUNE`` overrides its values, a measuring aid for
    ``python -m bench tune``).  The same machine therefore always runs the same code.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, default "stdout"
        ``"stdout"`` prints a readable summary; ``"dicts"`` returns it as nested dictionaries
        instead (keys ``xent_fast``, ``cpu``, ``isa``, ``tuning``, ``openmp``).

    Returns
    -------
    dict or None
        The configuration with ``mode="dicts"``, else None.

    Raises
    ------
    ValueError
        For an unknown ``mode``, or when ``XENT_FAST_TUNE`` held a bad override.

    Examples
    --------
    >>> import xent_fast
    >>> xent_fast.show_config(mode="dicts")["isa"]["in_use"] in ("baseline", "avx2", "avx512")
    True
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    d = _config_dicts()
    if mode == "dicts":
        return d
    cpu, isa, tuning, omp = d["cpu"], d["isa"], d["tuning"], d["openmp"]
    hexed = (lambda v: f"{v} (0x{v:02X})" if v >= 0 else "unknown")
    lines = [
        f"xent_fast {d['xent_fast']['version']}",
        "CPU:",
        f"  vendor: {cpu['vendor']}",
        f"  brand: {cpu['brand'] or 'unknown'}",
        f"  family: {hexed(cpu['family'])}, model: {hexed(cpu['model'])}, "
        f"stepping: {cpu['stepping']}",
        f"  features used by the dispatch: {' '.join(cpu['features']) or 'none'}",
        "Instruction set:",
        f"  in use: {isa['in_use']}",
        f"  available: {', '.join(isa['available'])}",
        f"  XENT_FAST_ISA: {isa['XENT_FAST_ISA'] or '(not set)'}",
        f"Tuning row: {tuning['name']}",
        f"  source: {tuning['source']}",
        f"  preferred path: {tuning['prefer_isa'] or 'the widest available'}",
    ]
    lines += [f"  {key}: {tuning[key]}" for key in _TUNING_KEYS[3:]]
    lines += [
        f"  XENT_FAST_TUNE: {tuning['XENT_FAST_TUNE'] or '(not set)'}",
        "OpenMP:",
        f"  compiled with: {_describe_compiled(omp['compiled_with'])}",
        *(f"  runtime: {r}" for r in _describe_runtimes(omp["runtimes"])),
        f"  default threads: {omp['default_threads']}",
    ]
    print("\n".join(lines))
    return None
