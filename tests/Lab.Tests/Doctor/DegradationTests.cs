using System.Diagnostics;
using Lab.Hosts;

namespace Lab.Tests.Doctor;

/// <summary>Without CAP_NET_ADMIN and CAP_NET_RAW, chapters report skips with reasons, not failures.</summary>
public class DegradationTests
{
    [Fact]
    public async Task UnderCapshAChapterThatNeedsTheCapabilitiesReportsSkipsNotFailures()
    {
        Assert.SkipUnless(File.Exists("/usr/sbin/capsh") && Capabilities.Has(Capability.SysAdmin), "needs capsh and root");
        var chapter = Path.Combine(RepoRoot.Path, "notebooks", "02-the-handshake-and-two-queues.ipynb");
        Assert.SkipUnless(File.Exists(chapter), "chapter 02 is not in this checkout");
        var outDir = Directory.CreateTempSubdirectory("lab-capsh-").FullName;
        var psi = new ProcessStartInfo("/usr/sbin/capsh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--drop=cap_net_admin,cap_net_raw", "--", "-c",
                     $"exec dotnet '{Lab.Tests.Engine.LabProcess.Dll}' run '{chapter}' --out '{outDir}'" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var e = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await p.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);
        var output = await o + await e;
        Assert.True(p.ExitCode == 0, output);
        Assert.Contains("skipped: This cell needs CAP_NET_ADMIN", output);
        Assert.Contains("--cap-add=NET_ADMIN", output);
        Assert.Contains("skipped: it depends on cell", output);
        Assert.Contains(" ok", output);   // the cells that need nothing still ran
        Assert.Contains("Skipped: This cell needs", File.ReadAllText(Path.Combine(outDir, "02-the-handshake-and-two-queues.ipynb")));
    }
}
