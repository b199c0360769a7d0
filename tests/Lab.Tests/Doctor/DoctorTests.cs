using Lab.Cli.Doctor;
using Lab.Cli.Notebooks;
using Lab.Hosts;

namespace Lab.Tests.Doctor;

public class DoctorTests
{
    /// <summary>Two chapters: one needs CAP_NET_ADMIN only for a later experiment, one from its set-up cell.</summary>
    static string Chapters()
    {
        var dir = Directory.CreateTempSubdirectory("lab-doctor-").FullName;
        Save(dir, "01-partly.ipynb", ("markdown", "# 01 · Partly"), ("code", "var x = 1;"),
            ("markdown", "## A second host"), ("code", "Needs.Capabilities(Capability.NetAdmin);\nvar host = 1;"));
        Save(dir, "02-not.ipynb", ("markdown", "# 02 · Not"), ("code", "Needs.Capabilities(Capability.NetAdmin, Capability.NetRaw);"));
        return dir;
    }

    static void Save(string dir, string name, params (string Type, string Source)[] cells)
    {
        var nb = new Notebook();
        foreach (var (t, s) in cells) nb.Cells.Add(new NotebookCell { CellType = t, Source = s });
        nb.Save(Path.Combine(dir, name));
    }

    [Fact]
    public void WithEveryCapabilityEveryChapterRunsFully()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW");
        var report = Lab.Cli.Doctor.Doctor.Examine(Chapters());
        Assert.True(report.AllFull);
        Assert.All(report.Chapters, c => Assert.Equal(ChapterReadiness.Full, c.Readiness));
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/osrelease").Trim(), report.KernelVersion);
        Assert.Contains(report.Sysctls, s => s.Name == "net.core.somaxconn" && s.Value == File.ReadAllText("/proc/sys/net/core/somaxconn").Trim());
    }

    [Fact]
    public void TheDoctorListsHowThisKernelBehavesWhereKernelsDiffer()
    {
        var report = Lab.Cli.Doctor.Doctor.Examine(Chapters());
        Assert.Equal(new[] { "accept queue bound", "SYN queue bound", "SYN retransmission schedule", "SO_REUSEPORT request migration",
            "io_uring multishot accept", "pruning of a crowded SYN queue" }, report.Behaviours.Select(b => b.Name));
        var text = Lab.Cli.Doctor.Doctor.Render(report);
        Assert.Contains("How this kernel behaves where kernels differ", text);
        // This kernel (6.x) measures backlog + 1 for both queues and has tcp_syn_linear_timeouts.
        Assert.Contains("✓ SYN queue bound: holds backlog + 1 half-open requests", text);
        Assert.Contains($"net.ipv4.tcp_syn_linear_timeouts = {File.ReadAllText("/proc/sys/net/ipv4/tcp_syn_linear_timeouts").Trim()}", text);
        // io_uring is on here (kernel.io_uring_disabled = 0), and the measurement says so.
        Assert.Contains("✓ io_uring multishot accept: one IORING_OP_ACCEPT request takes every connection", text);
        // An older kernel's line, rendered from the same decision logic, says what newer kernels do.
        var older = report with { Behaviours = [Lab.Observe.KernelBehaviours.SynQueueBound(0), Lab.Observe.KernelBehaviours.SynSchedule(null),
            Lab.Observe.KernelBehaviours.IoUringAccept(Lab.Sockets.IoUring.SetupFailure(Lab.Interop.errno.ENOSYS).Message)] };
        var olderText = Lab.Cli.Doctor.Doctor.Render(older);
        Assert.Contains("◐ SYN queue bound: holds backlog half-open requests", olderText);
        Assert.Contains("newer kernels: Linux 6.5 and later", olderText);
        Assert.Contains("◐ io_uring multishot accept: not usable here: io_uring_setup() failed: ENOSYS", olderText);
        Assert.Contains("CONFIG_IO_URING", olderText);
    }

    [Fact]
    public async Task UnderCapshWithoutNetAdminAndNetRawTheDoctorNamesTheMissingCapabilitiesAndTheFixes()
    {
        Assert.SkipUnless(File.Exists("/usr/sbin/capsh") && Capabilities.Has(Capability.SysAdmin), "needs capsh and root");
        var dir = Chapters();
        var r = await Lab.Tests.Engine.LabProcess.RunWithoutNetCapabilities(TimeSpan.FromSeconds(120), "doctor", "--notebooks", dir);
        var text = r.Stdout;
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("✗ CAP_NET_ADMIN", text);
        Assert.Contains("✗ CAP_NET_RAW", text);
        Assert.Contains("--cap-add=NET_ADMIN", text);
        Assert.Contains("◐ runs partly  01-partly.ipynb", text);
        Assert.Contains("skipped: A second host", text);
        Assert.Contains("✗ cannot run   02-not.ipynb", text);
    }

    /// <summary>
    /// The doctor names each host and reads what is there: the dotnet tools scripts/prereqs installs, at their versions,
    /// and a kernelspec only where one was installed (the search path is a temp folder holding `.net-csharp`).
    /// </summary>
    [Fact]
    public void TheDoctorSaysWhichHostsThisMachineHas()
    {
        Assert.SkipUnless(Lab.Tests.Polyglot.RealKernel.Installed, Lab.Tests.Polyglot.RealKernel.Missing);
        var jupyter = Directory.CreateTempSubdirectory("lab-doctor-jupyter-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(jupyter, "kernels", ".net-csharp"));
            File.WriteAllText(Path.Combine(jupyter, "kernels", ".net-csharp", "kernel.json"), "{}");
            var hosts = Lab.Cli.Doctor.Doctor.Hosts(labKernelspec: null, jupyterDirs: [jupyter]);
            Assert.Equal(4, hosts.Count);
            Assert.Contains(hosts, h => h.Name.StartsWith("dotnet-repl") && h.Present && h.Detail.StartsWith("0.3.259 at "));
            Assert.Contains(hosts, h => h.Name.StartsWith("dotnet-interactive") && h.Present && h.Detail.StartsWith("1.0.712001 at "));
            Assert.Contains(hosts, h => h.Name.StartsWith(".net-csharp") && h.Present && h.Detail == Path.Combine(jupyter, "kernels", ".net-csharp"));
            Assert.Contains(hosts, h => h.Name.StartsWith("lab-csharp") && !h.Present && h.Fix == "./lab jupyter install --user");
        }
        finally { Directory.Delete(jupyter, true); }
    }
}
