using Lab.Hosts;
using Lab.Tests.Engine;

namespace Lab.Tests.Experiments;

/// <summary>
/// Chapter 04 builds its floods in its own cells (RunFlood: the sysctl scopes, the pinned spoofed sources, the raw SYNs,
/// QueueWatch, ConnectTimer), so it is tested by running its cells: each of its checks throws when the kernel disagrees.
/// The instruments it composes have their own tests (ConnectTimerTests, DeferAcceptTests, QueueWatchTests, NetHostTests).
/// </summary>
public class SynFloodTests
{
    static string Chapter => Path.Combine(RepoRoot.Path, "notebooks", "04-syn-flood.ipynb");

    [Fact]
    public async Task EveryCheckOfTheChapterHolds()
    {
        // Among them: with cookies off the SYN queue stops at backlog + 1 and legitimate clients time out; the second flood
        // in the same host (cookies on) still holds the queue full, so all 8 legitimate clients come back with a cookie and
        // no ICMP unreachable frees a slot (the pins); cookie connections go straight into the accept queue; spoofed SYNs
        // at 127.0.0.1 only move ListenDrops; TCP_DEFER_ACCEPT shows the SYN queue without capabilities.
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw) && Capabilities.Has(Capability.SysAdmin),
            "needs CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_ADMIN (run as root)");
        var outDir = Directory.CreateTempSubdirectory("lab-04-").FullName;
        var r = await LabProcess.Run(RepoRoot.Path, null, "run", Chapter, "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.DoesNotContain("skipped", r.Stdout);
        Assert.Contains("cookie connection went straight into the accept queue", File.ReadAllText(Path.Combine(outDir, "04-syn-flood.ipynb")));
    }

    [Fact]
    public async Task WithoutNetAdminAndNetRawTheFloodsAreSkippedAndTheUnprivilegedSectionStillRuns()
    {
        Assert.SkipUnless(File.Exists("/usr/sbin/capsh") && Capabilities.Has(Capability.SysAdmin), "needs capsh and root");
        var outDir = Directory.CreateTempSubdirectory("lab-04-capsh-").FullName;
        var r = await LabProcess.RunWithoutNetCapabilities(TimeSpan.FromMinutes(3), "run", Chapter, "--out", outDir);
        var output = r.ToString();
        Assert.True(r.ExitCode == 0, output);
        Assert.Contains("skipped: This cell needs CAP_NET_ADMIN", output);
        var executed = File.ReadAllText(Path.Combine(outDir, "04-syn-flood.ipynb"));
        Assert.Contains("data-less connections wait as request sockets in the SYN queue", executed);
        Assert.Contains("accept returned exactly the connections that sent data", executed);
    }
}
