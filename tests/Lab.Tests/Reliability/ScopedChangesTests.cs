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
            $"var scope = Lab.Observe.Sysctl.Set(\"{Name}\", {other});\nSystem.IO.File.WriteAllText(\"/tmp/lab-scope-{Environment.ProcessId}\", \"set\");\nSystem.Threading.Thread.Sleep(60_000);",
            h.Context(timeout: TimeSpan.FromSeconds(3)), TestContext.Current.CancellationToken);
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

    [Fact]
    public async Task ASysctlChangedByAnInterruptedCellIsRestored()
    {
        // An interrupt (the Jupyter kernel's, the REPL's Ctrl+C) cancels the cell's token; the engine then disposes what
        // the cell started, the scope included.
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs root to change a sysctl");
        var before = Read();
        var other = before == "3" ? "4" : "3";
        var marker = $"/tmp/lab-scope-int-{Environment.ProcessId}";
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        using var interrupt = new CancellationTokenSource();
        var run = h.Engine.ExecuteAsync(
            $"var scope = Lab.Observe.Sysctl.Set(\"{Name}\", {other});\nSystem.IO.File.WriteAllText(\"{marker}\", \"set\");\nSystem.Threading.Thread.Sleep(60_000);",
            h.Context(timeout: TimeSpan.FromSeconds(60)), interrupt.Token);
        try
        {
            Assert.True(SpinWait.SpinUntil(() => File.Exists(marker), TimeSpan.FromSeconds(30)), "the cell never reached the point after Set");
            Assert.Equal(other, Read());
            interrupt.Cancel();
            var r = await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
            Assert.Equal(CellStatus.Cancelled, r.Status);
            Assert.Equal(before, Read());
        }
        finally
        {
            File.Delete(marker);
            File.WriteAllText("/proc/sys/net/ipv4/tcp_synack_retries", before);
        }
    }

    [Fact]
    public async Task AnOpenFileLimitLoweredByAnInterruptedCellIsRestored()
    {
        var (soft, _) = OpenFileLimit.Read();
        var open = Directory.GetFiles("/proc/self/fd").Length;
        var lowered = (ulong)open + 200;
        Assert.SkipWhen(lowered >= soft, $"the soft limit {soft} is already below {lowered}");
        var marker = $"/tmp/lab-rlimit-int-{Environment.ProcessId}";
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        using var interrupt = new CancellationTokenSource();
        var run = h.Engine.ExecuteAsync(
            $"var limit = Lab.Hosts.OpenFileLimit.Set({lowered});\nSystem.IO.File.WriteAllText(\"{marker}\", \"set\");\nSystem.Threading.Thread.Sleep(60_000);",
            h.Context(timeout: TimeSpan.FromSeconds(60)), interrupt.Token);
        try
        {
            Assert.True(SpinWait.SpinUntil(() => File.Exists(marker), TimeSpan.FromSeconds(30)), "the cell never reached the point after Set");
            Assert.Equal(lowered, OpenFileLimit.Read().Soft);
            interrupt.Cancel();
            var r = await run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
            Assert.Equal(CellStatus.Cancelled, r.Status);
            Assert.Equal(soft, OpenFileLimit.Read().Soft);
        }
        finally
        {
            File.Delete(marker);
            if (OpenFileLimit.Read().Soft != soft) OpenFileLimit.Set(soft);
        }
    }

    [Fact]
    public void AnOpenFileLimitOutOfRangeIsRefusedNamingTheRange()
    {
        var (_, hard) = OpenFileLimit.Read();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => OpenFileLimit.Set(3));
        Assert.Contains($"from 16 to the hard limit {hard}", e.Message);
        if (hard < ulong.MaxValue) Assert.Throws<ArgumentOutOfRangeException>(() => OpenFileLimit.Set(hard + 1));
    }
}
