using System.CommandLine;
using System.Text;
using System.Text.RegularExpressions;
using Lab.Cli.Notebooks;
using Lab.Hosts;
using Lab.Observe;

namespace Lab.Cli.Doctor;

/// <summary>Whether a chapter can run here.</summary>
public enum ChapterReadiness { Full, Partly, No }

/// <summary>One chapter's verdict: what it needs that is missing, and which of its experiments would be skipped.</summary>
public sealed record ChapterCheck(string Notebook, string Title, ChapterReadiness Readiness,
    IReadOnlyList<string> Missing, IReadOnlyList<string> SkippedExperiments);

/// <summary>
/// One host the chapters can run in, and whether this machine has it: the lab's own Jupyter kernel, or the real .NET
/// Interactive kernel (dotnet-repl headless, dotnet-interactive for Polyglot Notebooks and the `.net-csharp` kernel).
/// </summary>
public sealed record HostCheck(string Name, bool Present, string Detail, string Fix);

/// <summary>What `lab doctor` found on this machine.</summary>
public sealed record DoctorReport(
    string KernelVersion,
    IReadOnlyList<(string Capability, bool Held)> Capabilities,
    IReadOnlyList<(string Name, string Value)> Sysctls,
    IReadOnlyList<(string Tool, bool Present)> Tools,
    string? KernelspecPath,
    IReadOnlyList<HostCheck> Hosts,
    IReadOnlyList<ChapterCheck> Chapters,
    IReadOnlyList<KernelBehaviours.Behaviour> Behaviours)
{
    /// <summary>True when every chapter can run fully (the doctor's exit status is 0).</summary>
    public bool AllFull => Chapters.All(c => c.Readiness == ChapterReadiness.Full);
}

/// <summary>
/// `lab doctor`: reads this machine (kernel, capabilities, the sysctls the chapters discuss, tools, the Jupyter
/// kernelspec) and says for each chapter whether it runs fully, partly or not, with the fix. A chapter's needs are
/// read from the chapter itself: every cell that calls <c>Needs.Capabilities(Capability.X, …)</c>.
/// </summary>
public static class Doctor
{
    static readonly Capability[] Watched = [Capability.NetAdmin, Capability.NetRaw, Capability.SysAdmin];
    static readonly string[] ToolsUsed = ["ip", "ss", "nstat", "nft", "tc"];
    static readonly Regex NeedsCall = new(@"Needs\.Capabilities\(([^;]*)\)", RegexOptions.Compiled);
    static readonly Regex CapabilityName = new(@"Capability\.(\w+)", RegexOptions.Compiled);

    /// <summary>Examines this machine against the chapters in <paramref name="notebooksDir"/>.</summary>
    public static DoctorReport Examine(string notebooksDir)
    {
        var caps = Watched.Select(c => (Capabilities.Name(c), Capabilities.Has(c))).ToList();
        var sysctls = Sysctl.Known.Select(k => (k.Name, TryRead(k.Name))).ToList();
        var tools = ToolsUsed.Select(t => (t, OnPath(t))).ToList();
        var chapters = Directory.Exists(notebooksDir)
            ? NotebookRunner.Chapters(notebooksDir).Select(CheckChapter).ToList()
            : new List<ChapterCheck>();
        var lab = FindKernelspec();
        return new DoctorReport(KernelBehaviours.Release, caps, sysctls, tools, lab, Hosts(lab), chapters, KernelBehaviours.All());
    }

    /// <summary>The hosts that run the chapters, read from where each installs itself (kernelspecs in <paramref name="jupyterDirs"/>, default: where Jupyter looks).</summary>
    public static IReadOnlyList<HostCheck> Hosts(string? labKernelspec, IEnumerable<string>? jupyterDirs = null)
    {
        var net = FindKernelspec(".net-csharp", jupyterDirs);
        var repl = DotnetTool("dotnet-repl");
        var interactive = DotnetTool("microsoft.dotnet-interactive", "dotnet-interactive");
        return
        [
            new("lab-csharp Jupyter kernel (the lab's own engine: VS Code's Jupyter extension, JupyterLab)", labKernelspec != null,
                labKernelspec ?? "not installed", "./lab jupyter install --user"),
            new("dotnet-repl (the real .NET Interactive kernel, headless: tests/polyglot/run)", repl != null,
                repl ?? "not installed", "bash scripts/prereqs"),
            new("dotnet-interactive (Polyglot Notebooks' kernel; deprecated upstream in 2026, still works)", interactive != null,
                interactive ?? "not installed", "bash scripts/prereqs"),
            new(".net-csharp Jupyter kernel (the real kernel in VS Code's Jupyter extension, JupyterLab)", net != null,
                net ?? "not installed", "PATH=$HOME/.dotnet/tools:$PATH dotnet interactive jupyter install"),
        ];
    }

    /// <summary>"VERSION at PATH" of a global dotnet tool (~/.dotnet/tools, its version from the tool store), or null.</summary>
    static string? DotnetTool(string packageId, string? command = null)
    {
        var tools = Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".dotnet", "tools");
        var exe = Path.Combine(tools, command ?? packageId);
        if (!File.Exists(exe)) return null;
        var store = Path.Combine(tools, ".store", packageId);
        var version = Directory.Exists(store) ? Directory.GetDirectories(store).Select(Path.GetFileName).OrderDescending().FirstOrDefault() : null;
        return $"{version ?? "unknown version"} at {exe}";
    }

    static string TryRead(string name)
    {
        try { return Sysctl.Read(name).Replace('\t', ' '); }
        catch (SysctlException e) { return "unreadable: " + e.Message; }
    }

    static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
            .Concat(["/usr/sbin", "/sbin"]).Any(d => File.Exists(Path.Combine(d, tool)));

    /// <summary>The folder of an installed kernelspec (the lab's by default), or null (searched where Jupyter searches).</summary>
    public static string? FindKernelspec(string name = "lab-csharp", IEnumerable<string>? jupyterDirs = null)
    {
        var dirs = jupyterDirs ?? (Environment.GetEnvironmentVariable("JUPYTER_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat([Lab.Cli.Jupyter.KernelSpec.UserDataDir(), "/usr/local/share/jupyter", "/usr/share/jupyter"]);
        return dirs.Select(d => Path.Combine(d, "kernels", name))
                   .FirstOrDefault(d => File.Exists(Path.Combine(d, "kernel.json")));
    }

    /// <summary>What one chapter needs, from its cells' Needs.Capabilities calls, against what this process holds.</summary>
    public static ChapterCheck CheckChapter(string path)
    {
        var nb = Notebook.Load(path);
        var missing = new SortedSet<string>();
        var skipped = new List<string>();
        string heading = nb.Title ?? Path.GetFileNameWithoutExtension(path);
        bool setupBlocked = false;
        int codeCell = 0;
        foreach (var cell in nb.Cells)
        {
            if (cell.CellType == "markdown")
            {
                var h = cell.Source.Split('\n').FirstOrDefault(l => l.StartsWith('#'));
                if (h != null) heading = h.TrimStart('#', ' ');
                continue;
            }
            if (cell.CellType != "code") continue;
            codeCell++;
            var lacking = NeedsCall.Matches(cell.Source)
                .SelectMany(m => CapabilityName.Matches(m.Groups[1].Value).Select(c => c.Groups[1].Value))
                .Where(n => Enum.TryParse<Capability>(n, out var cap) && !Capabilities.Has(cap))
                .Select(n => Capabilities.Name(Enum.Parse<Capability>(n)))
                .ToList();
            if (lacking.Count == 0) continue;
            foreach (var l in lacking) missing.Add(l);
            if (codeCell == 1) setupBlocked = true;
            if (!skipped.Contains(heading)) skipped.Add(heading);
        }
        var readiness = missing.Count == 0 ? ChapterReadiness.Full : setupBlocked ? ChapterReadiness.No : ChapterReadiness.Partly;
        return new ChapterCheck(Path.GetFileName(path), nb.Title ?? Path.GetFileName(path), readiness, missing.ToList(), skipped);
    }

    /// <summary>The fix for a missing capability, as a reader in the devcontainer applies it.</summary>
    public static string FixFor(string capability) =>
        $"add --cap-add={capability["CAP_".Length..]} to runArgs in .devcontainer/devcontainer.json (or run as root)";

    /// <summary>The report as a terminal shows it.</summary>
    public static string Render(DoctorReport r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Linux kernel {r.KernelVersion}");
        sb.AppendLine();
        sb.AppendLine("Capabilities (this process):");
        foreach (var (c, held) in r.Capabilities)
            sb.AppendLine($"  {(held ? "✓" : "✗")} {c}{(held ? "" : "   fix: " + FixFor(c))}");
        sb.AppendLine();
        sb.AppendLine("Sysctls the chapters read:");
        foreach (var (n, v) in r.Sysctls) sb.AppendLine($"  {n,-34} {v}");
        sb.AppendLine();
        sb.AppendLine("Tools:");
        foreach (var (t, present) in r.Tools)
            sb.AppendLine($"  {(present ? "✓" : "✗")} {t}{(present ? "" : "   fix: bash scripts/prereqs (as root)")}");
        sb.AppendLine();
        sb.AppendLine("How this kernel behaves where kernels differ (the chapters' checks follow it):");
        foreach (var b in r.Behaviours)
        {
            sb.AppendLine($"  {(b.Newer == null ? "✓" : "◐")} {b.Name}: {b.ThisKernel}");
            if (b.Newer != null) sb.AppendLine($"      newer kernels: {b.Newer}");
            sb.AppendLine($"      known from: {b.HowKnown}; chapters {b.Chapters}");
        }
        sb.AppendLine();
        sb.AppendLine("Hosts that run the chapters:");
        foreach (var h in r.Hosts)
            sb.AppendLine($"  {(h.Present ? "✓" : "✗")} {h.Name}: {h.Detail}{(h.Present ? "" : "   fix: " + h.Fix)}");
        sb.AppendLine();
        sb.AppendLine("Chapters:");
        foreach (var c in r.Chapters)
        {
            var mark = c.Readiness switch { ChapterReadiness.Full => "✓ runs fully", ChapterReadiness.Partly => "◐ runs partly", _ => "✗ cannot run" };
            sb.AppendLine($"  {mark,-14} {c.Notebook}");
            if (c.Readiness != ChapterReadiness.Full)
            {
                sb.AppendLine($"      skipped: {string.Join("; ", c.SkippedExperiments)}");
                foreach (var m in c.Missing) sb.AppendLine($"      needs {m}: {FixFor(m)}");
            }
        }
        if (r.Chapters.Count == 0) sb.AppendLine("  (no chapters found)");
        sb.AppendLine();
        sb.AppendLine(r.AllFull ? "Every chapter can run fully here." : "Some chapters cannot run fully here: see the fixes above.");
        return sb.ToString();
    }
}
