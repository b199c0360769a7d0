using System.Diagnostics;
using Lab.Hosts;
using Lab.Tests.Engine;

namespace Lab.Tests.Reliability;

/// <summary>A lab process stopped with SIGTERM undoes what it started, as a stopped cell does.</summary>
public class TerminationTests
{
    [Fact]
    public async Task SigtermRemovesTheNamespaceACellCreated()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN to create a namespace");
        var dir = Directory.CreateTempSubdirectory("lab-sigterm-").FullName;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        psi.ArgumentList.Add(LabProcess.Dll);
        psi.ArgumentList.Add("repl");
        using var p = Process.Start(psi)!;
        var output = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        string? ns = null;
        try
        {
            await p.StandardInput.WriteLineAsync("var h = Lab.Hosts.NetHost.Create(\"sigterm\"); \"NS=\" + h.Namespace");
            await p.StandardInput.FlushAsync(TestContext.Current.CancellationToken);
            var clock = Stopwatch.StartNew();
            while (ns is null && clock.Elapsed < TimeSpan.FromSeconds(60) && !p.HasExited)
            {
                lock (output) ns = output.ToString().Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("NS="))?[3..];
                await Task.Delay(100, TestContext.Current.CancellationToken);
            }
            Assert.True(ns != null, "the repl never printed the namespace:\n" + output);
            Assert.True(File.Exists($"/run/netns/{ns}"), $"{ns} was not created");
            Assert.True(Command.Run("kill", ["-TERM", p.Id.ToString()]).Ok);
            Assert.True(p.WaitForExit(30_000), "the repl did not exit within 30 s of SIGTERM");
            Assert.False(File.Exists($"/run/netns/{ns}"), $"{ns} is still there after SIGTERM:\n{output}");
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            if (ns != null && File.Exists($"/run/netns/{ns}")) Command.Run("ip", ["netns", "delete", ns]);
            Directory.Delete(dir, true);
        }
    }
}

/// <summary>Ctrl+C ends a long-running lab command the way its own deadline does: it stops and prints what it has.</summary>
public class CtrlCTests
{
    [Fact]
    public async Task SigintStopsLabServeWhichPrintsItsSummaryAndExitsZero()
    {
        int port;
        using (var probe = Lab.Sockets.Listener.Open("127.0.0.1:0")) port = probe.Port;
        using var p = Process.Start(LabProcess.Interruptible(["serve", "single-thread-loop", "--port", port.ToString(), "--quiet", "--duration", "60"]))!;
        // Its first line says it listens (and its Ctrl+C handler is in place by then).
        var first = p.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken).AsTask();
        Assert.True(await first.CompletesWithin(TimeSpan.FromSeconds(30)), "lab serve printed nothing within 30 s");
        var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        try
        {
            Assert.Contains("listening on", await first ?? $"(exited {p.ExitCode}: {await stderr})");
            using (var c = new Lab.Tests.Topologies.TestClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port)))
                Assert.Equal(200, c.Get().Status);
            Assert.Equal(0, Tmds.Linux.LibC.kill(p.Id, Tmds.Linux.LibC.SIGINT));
            Assert.True(p.WaitForExit(10_000), "lab serve did not stop within 10 s of SIGINT");
            // Without a handler of its own, .NET dies of SIGINT (exit 130, nothing printed after the first line).
            var (said, err) = (await stdout, await stderr);
            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {said} {err}");
            Assert.Contains("1 accepted, 1 requests", said); // the summary counts the one client
            Assert.Contains("stopped in", said);
        }
        finally { if (!p.HasExited) p.Kill(entireProcessTree: true); }
    }
}

public class KeepTests
{
    sealed class Probe : IDisposable { public bool Disposed; public void Dispose() => Disposed = true; }

    [Fact]
    public void KeepingANewObjectUnderANameDisposesTheOldOne()
    {
        var name = "keep-" + Guid.NewGuid();
        var first = Keep.One(name, new Probe());
        Assert.Same(first, Keep.One(name, first));
        Assert.False(first.Disposed);
        var second = Keep.One(name, new Probe());
        Assert.True(first.Disposed);
        Assert.False(second.Disposed);
        second.Dispose();
    }

    [Fact]
    public void ARerunOfAManyCellDisposesEveryItemOfThePreviousList()
    {
        var name = "many-" + Guid.NewGuid();
        var first = Keep.Many<Probe>(name);
        first.Add(new Probe()); first.Add(new Probe());
        var items = first.ToArray();
        var second = Keep.Many<Probe>(name);
        Assert.Empty(second);
        Assert.All(items, p => Assert.True(p.Disposed));
        Assert.Empty(first);
    }
}
