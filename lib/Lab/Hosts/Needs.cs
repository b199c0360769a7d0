namespace Lab.Hosts;

/// <summary>What a cell needs from the machine; missing needs skip the cell with the fix.</summary>
public static class Needs
{
    /// <summary>Skips the cell unless the process holds every capability in <paramref name="caps"/>.</summary>
    public static void Capabilities(params Capability[] caps) => Capabilities(null, caps);

    /// <summary>As <see cref="Capabilities(Capability[])"/>, saying what the cell would have shown.</summary>
    public static void Capabilities(string? wouldShow, params Capability[] caps)
    {
        var missing = caps.Where(c => !Lab.Hosts.Capabilities.Has(c)).Select(Lab.Hosts.Capabilities.Name).ToList(); // the class, not this method
        if (missing.Count == 0) return;
        var runArgs = string.Join(" ", missing.Select(m => "--cap-add=" + m["CAP_".Length..]));
        throw new CellSkippedException(
            $"This cell needs {string.Join(" and ", missing)}, which this process does not hold. " +
            $"Run as root, or add {runArgs} to the devcontainer's runArgs (see `lab doctor`).", wouldShow);
    }

    /// <summary>
    /// Skips the cell on a kernel without the sysctl <paramref name="name"/> (added in Linux <paramref name="since"/>),
    /// saying what this kernel does instead (<paramref name="here"/>): a reader on an older kernel reads "your kernel
    /// does X, newer kernels do Y", not a failed cell. `lab doctor` lists these behaviours.
    /// </summary>
    public static void KernelSysctl(string name, string since, string here, string? wouldShow = null)
    {
        if (Lab.Observe.Sysctl.Exists(name)) return;
        var release = File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : "unknown";
        throw new CellSkippedException(
            $"This kernel ({release}) has no {name}: it came in Linux {since}. On this kernel {here}. " +
            "The cell shows what newer kernels do (`lab doctor` lists how this kernel behaves).", wouldShow);
    }

    /// <summary>
    /// Skips the cell where io_uring's multishot accept cannot run (measured once: <see cref="Lab.Observe.KernelBehaviours.IoUringUnavailable"/>),
    /// saying why and what fixes it.
    /// </summary>
    public static void IoUring(string? wouldShow = null)
    {
        if (Lab.Observe.KernelBehaviours.IoUringUnavailable is string why)
            throw new CellSkippedException($"This cell needs io_uring's multishot accept, which is not usable here: {why}", wouldShow);
    }
}
