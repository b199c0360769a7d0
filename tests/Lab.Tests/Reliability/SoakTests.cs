using System.Text.RegularExpressions;
using Lab.Tests.Engine;

namespace Lab.Tests.Reliability;

/// <summary>
/// The CI version of bench/soak: <c>lab soak --seconds 30</c> in a child process (its own fd and memory counts),
/// every topology in turn with keep-alive and close. Runs alone: it loads both cores for 30 s.
/// </summary>
[Collection(nameof(Lab.Tests.Sockets.ProcessWide))]
public class SoakTests
{
    [Fact]
    public async Task ThirtySecondsOfChurnLoseNoRequestAndLeaveMemoryAndFdsFlat()
    {
        var r = await LabProcess.Run(RepoRoot.Path, null, "soak", "--seconds", "30");
        TestContext.Current.SendDiagnosticMessage(r.Stdout);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("soak: passed", r.Stdout);
        // 30 s make 18 slices of at least 1 s or fewer on a busy machine; every one of the nine topologies ran at least once.
        var slices = Regex.Match(r.Stdout, @"soak: \d+ s, (\d+) slices").Groups[1].Value;
        Assert.True(int.Parse(slices) >= 9, $"only {slices} slices ran");
        foreach (var (label, _) in Lab.Topologies.TopologyCatalog.All) Assert.Contains(label, r.Stdout);
        var lost = Regex.Match(r.Stdout, @"lost: sent beyond received \+ errors \+ in flight\s+(\S+)").Groups[1].Value;
        Assert.Equal("0", lost);
        Assert.DoesNotContain("FAILED", r.Stdout);
    }
}
