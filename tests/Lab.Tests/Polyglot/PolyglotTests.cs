using System.Diagnostics;
using System.Text.Json.Nodes;
using Lab.Tests.Jupyter;

namespace Lab.Tests.Polyglot;

/// <summary>The library in the real kernel: charts, clean-up at exit, and a chapter through the `.net-csharp` Jupyter kernel.</summary>
[Collection(nameof(JupyterCollection))]
public class PolyglotTests(DotnetInteractiveSpecFixture spec) : IClassFixture<DotnetInteractiveSpecFixture>
{
    /// <summary>
    /// Chapter 00 through the other route to the real kernel: the `.net-csharp` Jupyter kernel (what `dotnet interactive
    /// jupyter install` registers), driven by nbclient as JupyterLab or VS Code's Jupyter extension would. The executed
    /// copy must hold no error, a chart with plotly.js and the chapter's passed checks (tests/polyglot/check.py); it
    /// stays in artifacts/polyglot-jupyter/. tests/polyglot/run takes every chapter through dotnet-repl.
    /// </summary>
    [Fact]
    public async Task ChapterZeroRunsInTheDotnetCsharpJupyterKernel()
    {
        Assert.SkipUnless(spec.Installed, RealKernel.Missing);
        var outDir = Path.Combine(RepoRoot.Path, "artifacts", "polyglot-jupyter");
        Directory.CreateDirectory(outDir);
        var executed = Path.Combine(outDir, "00-start-here.ipynb");
        var r = await spec.Exec("/usr/bin/python3", [Path.Combine(JupyterPathFixture.Scripts, "run_nbclient.py"),
            Path.Combine(RepoRoot.Path, "notebooks", "00-start-here.ipynb"), executed, ".net-csharp", "--allow-errors"], timeout: TimeSpan.FromMinutes(8));
        Assert.True(r.ExitCode == 0, r.ToString());
        var check = await spec.Exec("/usr/bin/python3", [Path.Combine(RepoRoot.Path, "tests", "polyglot", "check.py"), outDir]);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Matches(@"00-start-here\.ipynb\s+\d+\s+0\s+[1-9]\d*\s+[1-9]", check.Stdout); // cells, 0 errors, charts > 0, checks > 0
    }

    /// <summary>
    /// The kernel's process already holds FSharp.Core 10.0.103, and Plotly.NET 6 needs 10.1: the lab's charts must not
    /// depend on either. A chart draws (HTML calling Plotly.newPlot, plotly.js with the first), also after a reader's
    /// own <c>#r "nuget: Plotly.NET.Interactive, 6.0.0"</c> (which may fail by itself in this kernel).
    /// </summary>
    [Fact]
    public async Task ALabChartDrawsInTheRealKernelBesideItsFSharpCore()
    {
        Assert.SkipUnless(RealKernel.Installed, RealKernel.Missing);
        var cells = await RealKernel.RunCells("chart.ipynb",
                """AppDomain.CurrentDomain.GetAssemblies().First(a => a.GetName().Name == "FSharp.Core").GetName().Version.ToString()""",
                """Lab.Charts.LabCharts.Bars("queue", "connections", new[] { ("a", 1.0), ("b", 2.0) })""",
                "#r \"nuget: Plotly.NET.Interactive, 6.0.0\"",
                """Lab.Charts.LabCharts.Bars("after Plotly.NET.Interactive", "connections", new[] { ("a", 3.0) })""");
        Assert.StartsWith("10.0.", RealKernel.Plain(cells[1].Single()));
        foreach (var i in new[] { 2, 4 })
        {
            Assert.DoesNotContain(cells[i], o => (string?)o!["output_type"] == "error");
            var html = RealKernel.Html(Assert.Single(cells[i]));
            Assert.Contains("Plotly.newPlot", html);
            Assert.Contains("data-lab-plotly=", html);
        }
        Assert.Contains("data-lab-plotly-js=", RealKernel.Html(cells[2].Single()));
        Assert.Contains("after Plotly.NET.Interactive", RealKernel.Html(cells[4].Single()));
    }

    /// <summary>
    /// A live display in the real kernel: its first frame brings plotly.js (the first chart of the process), the frames
    /// between do not, and its last brings it again, since a front end that replaces outputs on update (VS Code, nbclient)
    /// keeps only the last. dotnet-repl keeps every frame, so all four outputs are here; its placeholder shows too.
    /// </summary>
    [Fact]
    public async Task ALiveDisplaysLastFrameCarriesPlotlyJsAgain()
    {
        Assert.SkipUnless(RealKernel.Installed, RealKernel.Missing);
        var cells = await RealKernel.RunCells("live.ipynb",
                """
                var view = display(HTML("<i>starting…</i>"));
                var live = Lab.Display.LiveView.Of(view.Update)!;
                foreach (var n in new[] { 1.0, 2.0 }) live.Frame(Lab.Charts.LabCharts.Bars("frame", "y", new[] { ("x", n) }));
                live.Final(Lab.Charts.LabCharts.Bars("last", "y", new[] { ("x", 3.0) }));
                """);
        Assert.Empty(RealKernel.Errors(cells));
        var html = cells[1].Select(RealKernel.Html).ToList();
        Assert.Equal(4, html.Count);
        Assert.Equal("<i>starting…</i>", html[0]);
        Assert.Equal([true, false, true], html.Skip(1).Select(h => h.Contains("data-lab-plotly-js=")));
        Assert.All(html.Skip(1), h => Assert.Contains("Plotly.newPlot", h));
        Assert.Contains("\"last\"", html[3]);
    }

    /// <summary>
    /// The real kernel never disposes what a session started; the library does it itself at process exit, so a
    /// namespace a cell made (which `ip netns add` would otherwise leave behind) is gone when dotnet-repl exits.
    /// </summary>
    [Fact]
    public async Task ANamespaceACellMadeIsGoneWhenTheKernelExits()
    {
        Assert.SkipUnless(RealKernel.Installed, RealKernel.Missing);
        Assert.SkipUnless(Lab.Hosts.Capabilities.Has(Lab.Hosts.Capability.NetAdmin), "needs CAP_NET_ADMIN to create a namespace");
        var cells = await RealKernel.RunCells("netns.ipynb", """var h = Lab.Hosts.NetHost.Create("exit"); "NS=" + h.Namespace""");
        Assert.Empty(RealKernel.Errors(cells));
        var ns = RealKernel.Plain(cells[1].Single()).Trim().Trim('"')["NS=".Length..];
        Assert.False(File.Exists($"/run/netns/{ns}"), $"{ns} is still there after dotnet-repl exited");
    }
}
