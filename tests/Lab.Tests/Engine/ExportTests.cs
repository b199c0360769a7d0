using System.Diagnostics;

namespace Lab.Tests.Engine;

/// <summary>`lab export NN --to cs`, then `dotnet run` of what it wrote: the chapter runs with no notebook host.</summary>
[Collection(nameof(EngineCollection))]
public class ExportTests
{
    static async Task<LabProcess.Result> DotnetRun(string file)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(file)!, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add("run");
        psi.ArgumentList.Add(file);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var e = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        try { await p.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(300), TestContext.Current.CancellationToken); }
        catch (TimeoutException) { p.Kill(entireProcessTree: true); throw; }
        return new LabProcess.Result(p.ExitCode, await o, await e);
    }

    [Fact]
    public async Task AnExportedChapterRunsWithDotnetRunAndPrintsItsValuesAndChecks()
    {
        var root = LabProcess.FixtureTree("export");
        try
        {
            var outDir = Path.Combine(root, "export");
            var r = await LabProcess.Run(root, null, "export", "1", "--to", "cs", "--notebooks", Path.Combine(root, "nb"), "--out", outDir + "/");
            Assert.True(r.ExitCode == 0, r.ToString());
            var file = Path.Combine(outDir, "01-exported.cs");
            Assert.Contains("wrote " + file, r.Stdout);
            var source = File.ReadAllText(file);
            Assert.Contains("#:project " + Path.Combine(RepoRoot.Path, "lib", "Lab", "Lab.csproj"), source);
            Assert.DoesNotContain("#r ", source);
            Assert.Contains("// **Predict:** what is twice the backlog?", source);        // prose as comments
            Assert.Contains("display(backlog * 2);", source);                             // a cell's value, shown
            Assert.Contains("Console.WriteLine(\"drawn\");", source);                       // a void last expression stays a statement
            Assert.True(source.IndexOf("record Row", StringComparison.Ordinal) > source.IndexOf("Cell(6);", StringComparison.Ordinal), "types go after the statements");

            var run = await DotnetRun(file);
            Assert.True(run.ExitCode == 0, run.ToString());
            var lines = run.Stdout.Replace("\r\n", "\n");
            Assert.Contains("── cell 2\n6\n── cell 3\n", lines);
            Assert.Contains("Queue   Depth\n------  -----\nsyn         1\naccept      4\n", lines);
            Assert.Contains("── cell 4\n✓ the accept queue holds backlog + 1 (expected 4, read 4)\n", lines);
            Assert.Contains("drawing the queue…\n", lines);
            var chart = lines.Split('\n').Single(l => l.StartsWith("Plotly chart: 1 trace(s) (scatter): ", StringComparison.Ordinal))["Plotly chart: 1 trace(s) (scatter): ".Length..];
            Assert.Contains("Plotly.newPlot", File.ReadAllText(chart));
            Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(chart)!, "plotly.min.js")));
            Assert.EndsWith("last cell, backlog 3\n", lines);
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public async Task AFailedCheckInAnExportedChapterFailsTheProgramNamingTheCell()
    {
        var root = LabProcess.FixtureTree("export");
        try
        {
            var nb = Path.Combine(root, "nb", "01-exported.ipynb");
            File.WriteAllText(nb, File.ReadAllText(nb).Replace("Check.Equal(backlog + 1,", "Check.Equal(backlog + 2,"));
            var r = await LabProcess.Run(root, null, "export", nb, "--out", Path.Combine(root, "failing.cs"));
            Assert.True(r.ExitCode == 0, r.ToString());
            var run = await DotnetRun(Path.Combine(root, "failing.cs"));
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("01-exported, cell 4: ✗ Check failed: the accept queue holds backlog + 1. What this kernel showed: expected 5, read 4", run.Stderr);
            Assert.DoesNotContain("last cell", run.Stdout);
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public async Task EveryChapterExportsToAProgramTheCompilerAccepts()
    {
        var outDir = Directory.CreateTempSubdirectory("lab-export-").FullName;
        try
        {
            foreach (var nb in Directory.GetFiles(Path.Combine(RepoRoot.Path, "notebooks"), "*.ipynb").Order())
            {
                var r = await LabProcess.Run(outDir, null, "export", nb, "--out", outDir + "/");
                Assert.True(r.ExitCode == 0, $"{Path.GetFileName(nb)}: {r}");
            }
            Assert.Equal(Directory.GetFiles(Path.Combine(RepoRoot.Path, "notebooks"), "*.ipynb").Length, Directory.GetFiles(outDir, "*.cs").Length);
        }
        finally { Directory.Delete(outDir, true); }
    }
}
