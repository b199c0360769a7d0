using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Lab.Cli.Notebooks;

namespace Lab.Tests.Engine;

[Collection(nameof(EngineCollection))]
public class RunCommandTests
{
    const string Validate = "import nbformat,sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))";

    [Fact]
    public async Task RunWritesValidExecutedNotebooksAndLeavesTheSourceAlone()
    {
        var root = LabProcess.FixtureTree("book");
        try
        {
            var source = Path.Combine(root, "nb", "01-fixture.ipynb");
            var before = SHA256.HashData(File.ReadAllBytes(source));
            var r = await LabProcess.Run(root, null, "run", Path.Combine(root, "nb"), "--out", Path.Combine(root, "out"));
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("01-fixture.ipynb  cell 1/5", r.Stdout);
            Assert.Contains("02-second.ipynb  cell 2/2", r.Stdout);   // the fixture has two code cells (the second: the wide table the book tests scroll)
            Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(source)));
            foreach (var name in new[] { "01-fixture.ipynb", "02-second.ipynb" })
            {
                var written = Path.Combine(root, "out", name);
                var (code, output) = await LabProcess.Python("-c", Validate, written);
                Assert.True(code == 0, $"{name} is not valid nbformat: {output}");
            }
            var nb = JsonNode.Parse(File.ReadAllText(Path.Combine(root, "out", "01-fixture.ipynb")))!;
            Assert.Equal(5, (int)nb["nbformat_minor"]!);
            var codeCells = nb["cells"]!.AsArray().Where(c => (string?)c!["cell_type"] == "code").ToList();
            Assert.Equal(new int?[] { 1, 2, 3, 4, 5 }, codeCells.Select(c => (int?)c!["execution_count"]));
            var value = codeCells[1]!["outputs"]!.AsArray().Single()!;
            Assert.Equal("execute_result", (string?)value["output_type"]);
            Assert.Equal(2, (int)value["execution_count"]!);
            Assert.Equal("6", Notebook.ReadText(value["data"]!["text/plain"]));
            var chartOutputs = codeCells[3]!["outputs"]!.AsArray();
            Assert.Equal("stream", (string?)chartOutputs[0]!["output_type"]);
            Assert.Equal("display_data", (string?)chartOutputs[1]!["output_type"]);
            // An executed notebook opened in Jupyter draws its charts offline: plotly.js rides in the first chart output.
            Assert.Contains("data-lab-plotly-js", Notebook.ReadText(chartOutputs[1]!["data"]!["text/html"]));
            Assert.DoesNotContain("data-lab-plotly-js", Notebook.ReadText(codeCells[4]!["outputs"]![0]!["data"]!["text/html"]));
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public async Task AFailingCellFailsTheRunAndIsNamed()
    {
        var root = LabProcess.FixtureTree("failing");
        try
        {
            var r = await LabProcess.Run(root, null, "run", Path.Combine(root, "nb", "01-failing.ipynb"), "--out", Path.Combine(root, "out"));
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("lab run: failed: 01-failing.ipynb, cell 2, line 2, col 3: CS0103 The name 'missing' does not exist", r.Stderr);
            Assert.Contains("01-failing.ipynb  cell 2/3", r.Stdout);
            Assert.DoesNotContain("cell 3/3", r.Stdout);
            // The executed copy is still written, with the error as Jupyter shows it, and it is valid nbformat.
            var written = Path.Combine(root, "out", "01-failing.ipynb");
            var (code, output) = await LabProcess.Python("-c", Validate, written);
            Assert.True(code == 0, output);
            var nb = Notebook.Load(written, keepOutputs: true);
            var error = nb.Cells.Where(c => c.IsCode).ElementAt(1).Outputs.Single();
            Assert.Equal("error", (string?)error["output_type"]);
            Assert.Equal("CompilationError", (string?)error["ename"]);
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public async Task RunnerOutputsTakeJupytersShapes()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "simple.ipynb");
        var run = await NotebookRunner.RunAsync(path, TimeSpan.FromSeconds(60), ct: TestContext.Current.CancellationToken);
        Assert.False(run.Succeeded);
        Assert.Equal(3, run.FailedCell);
        Assert.StartsWith("simple.ipynb, cell 3, line 1: InvalidOperationException: boom", run.FailureMessage);
        var cells = run.Executed.Cells.Where(c => c.IsCode).ToList();
        var first = cells[0].Outputs;
        Assert.Equal("stream", (string?)first[0]["output_type"]);
        Assert.Equal("hi\n", Notebook.ReadText(first[0]["text"]));
        // display(1) then Update(2): one display_data holding the last value, as a reader sees it after the run.
        Assert.Equal("display_data", (string?)first[1]["output_type"]);
        Assert.Equal("2", Notebook.ReadText(first[1]["data"]!["text/plain"]));
        Assert.Equal("42", Notebook.ReadText(cells[1].Outputs.Single()["data"]!["text/plain"]));
        var third = cells[2].Outputs;
        Assert.Equal("stderr", (string?)third[0]["name"]);
        Assert.Equal("error", (string?)third[1]["output_type"]);
        Assert.Equal("InvalidOperationException", (string?)third[1]["ename"]);
        Assert.Equal("boom", ((string?)third[1]["evalue"])!.Split(": ").Last());
    }

    /// <summary>
    /// A notebook run twice in one session (CI's --repeat 2) is saved from its last run, so that run's first chart
    /// must carry plotly.js itself: the first run's chart took it, and the copy in artifacts/run/ drew no chart.
    /// </summary>
    [Fact]
    public async Task EachSavedRunCarriesPlotlyJsInItsFirstChart()
    {
        var dir = Directory.CreateTempSubdirectory("lab-repeat-chart-").FullName;
        try
        {
            var lab = Path.Combine(RepoRoot.Path, "artifacts", "bin", "Lab", "debug", "Lab.dll");
            var nb = new System.Text.Json.Nodes.JsonObject
            {
                ["cells"] = new System.Text.Json.Nodes.JsonArray(
                    Cell("a", $"#r \"{lab}\""),
                    Cell("b", "Lab.Charts.LabCharts.Bars(\"t\", \"y\", new[] { (\"x\", 1.0) })"),
                    Cell("c", "Lab.Charts.LabCharts.Bars(\"u\", \"y\", new[] { (\"z\", 3.0) })")),
                ["metadata"] = new System.Text.Json.Nodes.JsonObject(), ["nbformat"] = 4, ["nbformat_minor"] = 5,
            };
            var path = Path.Combine(dir, "twice.ipynb");
            File.WriteAllText(path, nb.ToJsonString());
            var run = await NotebookRunner.RunAsync(path, TimeSpan.FromSeconds(60), ct: TestContext.Current.CancellationToken, repeat: 2);
            Assert.True(run.Succeeded, run.FailureMessage);
            var cells = run.Executed.Cells.Where(c => c.IsCode).ToList();
            Assert.Contains("data-lab-plotly-js=", Notebook.ReadText(cells[1].Outputs.Single()["data"]!["text/html"]));
            Assert.DoesNotContain("data-lab-plotly-js=", Notebook.ReadText(cells[2].Outputs.Single()["data"]!["text/html"]));
        }
        finally { Directory.Delete(dir, true); }
    }

    static System.Text.Json.Nodes.JsonObject Cell(string id, string source) => new()
    {
        ["cell_type"] = "code", ["id"] = id, ["metadata"] = new System.Text.Json.Nodes.JsonObject(), ["execution_count"] = null,
        ["outputs"] = new System.Text.Json.Nodes.JsonArray(), ["source"] = source,
    };

    [Fact]
    public async Task ALiveFirstChartKeepsPlotlyJsThroughItsUpdates()
    {
        // plotly.js rides on the session's first chart; when that chart is a live display, the saved notebook must
        // still carry it after the updates replaced the frame that brought it.
        var dir = Directory.CreateTempSubdirectory("lab-live-chart-").FullName;
        try
        {
            var lab = Path.Combine(RepoRoot.Path, "artifacts", "bin", "Lab", "debug", "Lab.dll");
            var nb = new System.Text.Json.Nodes.JsonObject
            {
                ["cells"] = new System.Text.Json.Nodes.JsonArray(
                    Code("a", $"#r \"{lab}\""),
                    Code("b", "var v = display(\"starting\");\nv.Update(Lab.Charts.LabCharts.Bars(\"t\", \"y\", new[] { (\"x\", 1.0) }));\nv.Update(Lab.Charts.LabCharts.Bars(\"t\", \"y\", new[] { (\"x\", 2.0) }));"),
                    Code("c", "Lab.Charts.LabCharts.Bars(\"u\", \"y\", new[] { (\"z\", 3.0) })")),
                ["metadata"] = new System.Text.Json.Nodes.JsonObject(), ["nbformat"] = 4, ["nbformat_minor"] = 5,
            };
            var path = Path.Combine(dir, "live.ipynb");
            File.WriteAllText(path, nb.ToJsonString());
            var run = await NotebookRunner.RunAsync(path, TimeSpan.FromSeconds(60), ct: TestContext.Current.CancellationToken);
            Assert.True(run.Succeeded, run.FailureMessage);
            var cells = run.Executed.Cells.Where(c => c.IsCode).ToList();
            var live = Notebook.ReadText(cells[1].Outputs.Single()["data"]!["text/html"]);
            Assert.Contains("data-lab-plotly-js=", live);
            Assert.Contains("\"y\":[2]", live);         // the last update's bar, not the first's
            Assert.DoesNotContain("\"y\":[1]", live);
            Assert.DoesNotContain("data-lab-plotly-js=", Notebook.ReadText(cells[2].Outputs.Single()["data"]!["text/html"]));
        }
        finally { Directory.Delete(dir, true); }

        static System.Text.Json.Nodes.JsonObject Code(string id, string source) => new()
        {
            ["cell_type"] = "code", ["id"] = id, ["metadata"] = new System.Text.Json.Nodes.JsonObject(), ["execution_count"] = null,
            ["outputs"] = new System.Text.Json.Nodes.JsonArray(), ["source"] = source,
        };
    }
}
