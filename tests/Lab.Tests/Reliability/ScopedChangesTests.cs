using Lab.Cli.Engine;
using Lab.Hosts;
using Lab.Tests.Engine;

namespace Lab.Tests.Reliability;

/// <summary>Changes to the machine made inside a cell are undone when the cell is stopped, not only when it ends well.</summary>
[Collection("ProcessWide")]
public class ScopedChangesTests
{
    const string Name = "net.ipv4.tcp_synack_retries";
    static string Read() => File.ReadAllText("/proc/sys/net/ipv4/tcp_synack_retries").Trim();

    [Fact]
    public async Task ASysctlChangedByACellThatTimesOutIsRestored()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs root to change a sysctl");
        var before = Read();
        var other = before == "3" ? "4" : "3";
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        var r = await h.Engine.ExecuteAsync(
            $"var scope = Lab.Observe.Sysctl.Set(\"{Name}\", {other});\nSystem.IO.File.WriteAllText(\"/tmp/lab-scope-{Environment.ProcessId}\", \"set\");\nThread.Sleep(60_000);",
            h.Context(timeout: TimeSpan.FromSeconds(3)));
        try
        {
            Assert.Equal(CellStatus.TimedOut, r.Status);
            Assert.True(File.Exists($"/tmp/lab-scope-{Environment.ProcessId}"), "the cell never reached the point after Set");
            Assert.Equal(before, Read());
        }
        finally
        {
            File.Delete($"/tmp/lab-scope-{Environment.ProcessId}");
            File.WriteAllText("/proc/sys/net/ipv4/tcp_synack_retries", before);
        }
    }
}
