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
        var r = await Lab.Tests.Engine.LabProcess.RunWithoutNetCapabilities(TimeSpan.FromMinutes(3), "run", chapter, "--out", outDir);
        var output = r.ToString();
        Assert.True(r.ExitCode == 0, output);
        Assert.Contains("skipped: This cell needs CAP_NET_ADMIN", output);
        Assert.Contains("--cap-add=NET_ADMIN", output);
        Assert.Contains("skipped: it depends on cell", output);
        Assert.Contains(" ok", output);   // the cells that need nothing still ran
        Assert.Contains("Skipped: This cell needs", File.ReadAllText(Path.Combine(outDir, "02-the-handshake-and-two-queues.ipynb")));
    }
}
