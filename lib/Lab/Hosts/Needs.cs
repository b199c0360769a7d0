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
}
