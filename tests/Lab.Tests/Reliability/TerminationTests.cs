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
            await p.StandardInput.FlushAsync();
            var clock = Stopwatch.StartNew();
            while (ns is null && clock.Elapsed < TimeSpan.FromSeconds(60) && !p.HasExited)
            {
                lock (output) ns = output.ToString().Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("NS="))?[3..];
                await Task.Delay(100);
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
