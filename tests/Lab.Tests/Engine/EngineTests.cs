using System.Net;
using System.Net.Sockets;
using Lab.Cli.Engine;

namespace Lab.Tests.Engine;

// One collection: LabResources' current scope is process-wide, so engines must not run cells concurrently.
[Collection(nameof(EngineCollection))]
public class EngineTests
{
    [Fact]
    public async Task StateCarriesAcrossCells()
    {
        await using var h = new EngineHarness();
        await h.RunOk("var x = 40;");
        await h.RunOk("int Add(int a) => a + x;");
        var r = await h.RunOk("Add(2)");
        Assert.Equal("42", r.Value!.Text);
    }

    [Fact]
    public async Task LastExpressionIsTheValueAndStatementsHaveNone()
    {
        await using var h = new EngineHarness();
        Assert.Null((await h.RunOk("var y = 1 + 1;")).Value);
        Assert.Null((await h.RunOk("Console.WriteLine(\"hi\")")).Value);
        var r = await h.RunOk("y * 21");
        Assert.Equal("42", r.Value!.Text);
        Assert.Equal(42, r.RawValue);
        Assert.Equal("<null>", (await h.RunOk("(string?)null")).Value!.Text);
    }

    [Fact]
    public async Task StdoutAndStderrAreCapturedPerCell()
    {
        await using var h = new EngineHarness();
        await h.RunOk("Console.WriteLine(\"to out\"); Console.Error.WriteLine(\"to err\"); Console.Write('c');");
        Assert.Equal("to out\nc", h.Out);
        Assert.Equal("to err\n", string.Concat(h.Stderr));
    }

    [Fact]
    public async Task DisplayShowsNowAndUpdateReplacesIt()
    {
        await using var h = new EngineHarness();
        await h.RunOk("var d = display(\"first\");");
        await h.RunOk("d.Update(\"second\");");
        var (id, bundle) = Assert.Single(h.Displays);
        Assert.Equal("first", bundle.Text);
        var (uid, updated) = Assert.Single(h.Updates);
        Assert.Equal(id, uid);
        Assert.Equal("second", updated.Text);
    }

    [Fact]
    public async Task MagicLinesAndMarkdownCells()
    {
        await using var h = new EngineHarness();
        Assert.Equal("3", (await h.RunOk("#!csharp\n1 + 2")).Value!.Text);
        Assert.Equal(CellStatus.Skipped, (await h.Run("#!markdown\n# Title", ct: TestContext.Current.CancellationToken)).Status);
        var r = await h.Run("#!fsharp\nlet x = 1", ct: TestContext.Current.CancellationToken);
        Assert.Equal(CellStatus.Error, r.Status);
        Assert.Contains("C# cells only", r.ErrorValue);
    }

    [Fact]
    public async Task CompileErrorsNameNotebookCellLineAndColumn()
    {
        await using var h = new EngineHarness();
        await h.RunOk("var ok = 1;");
        var r = await h.Run("var a = 1;\nvar b = nope + a;", ct: TestContext.Current.CancellationToken);
        Assert.Equal(CellStatus.Error, r.Status);
        Assert.Equal("CompilationError", r.ErrorName);
        Assert.Equal("99-engine-test.ipynb, cell 2, line 2, col 9: CS0103 The name 'nope' does not exist in the current context", r.ErrorValue);
        // The session goes on from the last good cell.
        Assert.Equal("1", (await h.RunOk("ok")).Value!.Text);
    }

    [Fact]
    public async Task RuntimeErrorsMapToTheCellLine()
    {
        await using var h = new EngineHarness();
        await h.RunOk("void Boom() => throw new InvalidOperationException(\"boom\");");
        var r = await h.Run("var a = 1;\n\nBoom();", ct: TestContext.Current.CancellationToken);
        Assert.Equal(CellStatus.Error, r.Status);
        Assert.Equal("InvalidOperationException", r.ErrorName);
        Assert.StartsWith("99-engine-test.ipynb, cell 2 (thrown in 99-engine-test.ipynb, cell 1, line 1): InvalidOperationException: boom", r.ErrorValue);
        Assert.Contains(r.Traceback, l => l.Contains("at Boom in 99-engine-test.ipynb, cell 1, line 1"));
        Assert.Contains(r.Traceback, l => l.Contains("in 99-engine-test.ipynb, cell 2, line 3"));
        var direct = await h.Run("\nthrow new ArgumentException(\"bad\");", ct: TestContext.Current.CancellationToken);
        Assert.StartsWith("99-engine-test.ipynb, cell 3, line 2: ArgumentException: bad", direct.ErrorValue);
        // Variables made before the throw survive, as in Polyglot.
        Assert.Equal("1", (await h.RunOk("a")).Value!.Text);
    }

    [Fact]
    public async Task ReferenceToTheLibraryBindsToTheHostsCopy()
    {
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        var r = await h.RunOk("typeof(Lab.LabResources).Assembly");
        Assert.Same(typeof(Lab.LabResources).Assembly, r.RawValue);
        // Same statics: a resource tracked by the cell is seen by the host.
        await h.RunOk("sealed class Probe : IDisposable { public void Dispose() => Lab.LabResources.Untrack(this); }\nvar probe = new Probe(); Lab.LabResources.Track(probe, \"engine-test-probe\");");
        Assert.True(Lab.LabResources.Count().ContainsKey("engine-test-probe"));
        await h.RunOk("probe.Dispose();");
        Assert.False(Lab.LabResources.Count().ContainsKey("engine-test-probe"));
    }

    [Fact]
    public async Task RelativeReferenceResolvesFromTheNotebooksFolder()
    {
        // A notebook in nb/ referencing ../lib/Lab.dll where lib/ is a copy of the library's folder.
        var root = Directory.CreateTempSubdirectory("lab-engine-ref-").FullName;
        try
        {
            var lib = Directory.CreateDirectory(Path.Combine(root, "lib")).FullName;
            foreach (var f in Directory.GetFiles(Path.Combine(RepoRoot.Path, "artifacts", "bin", "Lab", "debug"), "*.dll"))
                File.Copy(f, Path.Combine(lib, Path.GetFileName(f)));
            Directory.CreateDirectory(Path.Combine(root, "nb"));
            await using var h = new EngineHarness(Path.Combine(root, "nb", "01-ref.ipynb"));
            await h.RunOk("#r \"../lib/Lab.dll\"");
            var r = await h.RunOk("Lab.LabInfo.Folder");
            // The host already has Lab loaded: the cell binds to that copy, not a second one from lib/.
            Assert.Equal(Lab.LabInfo.Folder, r.RawValue);
            Assert.Single(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name == "Lab");
            var missing = await h.Run("#r \"../nowhere/Missing.dll\"", ct: TestContext.Current.CancellationToken);
            Assert.Equal(CellStatus.Error, missing.Status);
            Assert.Contains("01-ref.ipynb, cell 3, line 1", missing.ErrorValue);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task ChartCellRendersAFigureWithoutFSharp()
    {
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        var r = await h.RunOk("""
            var chart = Lab.Charts.Figure.Scatter(new double[] { 1, 2, 3 }, new double[] { 2, 4, 3 }, "y");
            display(chart);
            chart
            """);
        var (_, shown) = Assert.Single(h.Displays);
        Assert.Contains(Lab.Display.ChartHtml.Marker, shown.Html);
        Assert.Contains("Plotly.newPlot", shown.Html);
        Assert.Contains("\"y\":[2,4,3]", shown.Html);
        // The first chart of the session carries plotly.js; the next one reuses it.
        Assert.Contains("data-lab-plotly-js", shown.Html);
        Assert.DoesNotContain("data-lab-plotly-js", r.Value!.Html);
        Assert.Equal("Plotly chart: 1 trace(s) (scatter)", r.Value.Text);
        // Drawn, plotly.js included, and nothing F# in the process: a host holding its own FSharp.Core draws it too.
        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name == "Plotly.NET");
        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name == "FSharp.Core");
    }

    [Fact]
    public async Task RecordsShowAsTables()
    {
        await using var h = new EngineHarness();
        var r = await h.RunOk("record Row(string Name, int Count);\nnew[] { new Row(\"a\", 1), new Row(\"bb\", 22) }");
        Assert.Contains("<table class=\"lab-table\">", r.Value!.Html);
        Assert.Equal("Name  Count\n----  -----\na         1\nbb       22", r.Value.Text);
    }

    [Fact]
    public async Task RawHtmlShowsAsWritten()
    {
        await using var h = new EngineHarness();
        Assert.Equal("<b>bold</b>", (await h.RunOk("HTML(\"<b>bold</b>\")")).Value!.Html);
        await h.RunOk("display(HTML(\"<i>shown</i>\"));");
        Assert.Equal("<i>shown</i>", Assert.Single(h.Displays).Bundle.Html);
    }

    [Fact]
    public async Task InputComesFromTheContext()
    {
        await using var h = new EngineHarness();
        var r = await h.Engine.ExecuteAsync("Console.ReadLine() + \"!\"", h.Context(input: _ => "typed"), TestContext.Current.CancellationToken);
        Assert.Equal("typed!", r.Value!.Text);
    }

    [Fact]
    public async Task InputSurvivesAConsoleInputEncodingChange()
    {
        // Setting Console.InputEncoding makes the BCL drop a reader installed with Console.SetIn (the next Console.In
        // is a fresh reader over the real stdin). Playwright does it when it starts its driver (BookTests, in this
        // process); a cell may do it too. The engine must route Console.In again for the next cell.
        await using var h = new EngineHarness();
        var original = Console.InputEncoding;
        try
        {
            Console.InputEncoding = System.Text.Encoding.UTF8;
            var r = await h.Engine.ExecuteAsync("Console.ReadLine() + \"!\"", h.Context(input: _ => "typed"), TestContext.Current.CancellationToken);
            Assert.Equal("typed!", r.Value!.Text);
            await h.RunOk("Console.InputEncoding = System.Text.Encoding.Latin1;");
            var again = await h.Engine.ExecuteAsync("Console.In.ReadLine() + \"?\"", h.Context(input: _ => "again"), TestContext.Current.CancellationToken);
            Assert.Equal("again?", again.Value!.Text);
        }
        finally { Console.InputEncoding = original; }
    }

    [Fact]
    public async Task TimeoutStopsACellBlockedInAccept()
    {
        await using var h = new EngineHarness();
        await h.RunOk(EngineHarness.LabReference);
        await h.RunOk("""
            using System.Net;
            using System.Net.Sockets;
            sealed class BlockingListener : IDisposable
            {
                public readonly Socket Socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                public BlockingListener()
                {
                    Socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                    Socket.Listen(1);
                    Lab.LabResources.Track(this, "BlockingListener");
                }
                public void Dispose() { Socket.Dispose(); Lab.LabResources.Untrack(this); }
            }
            """);
        // accept(2) blocks in the kernel; the token alone cannot return it. Disposing the listener closes its fd.
        var r = await h.Run("var l = new BlockingListener();\nConsole.WriteLine(\"accepting\");\nl.Socket.Accept();", timeout: TimeSpan.FromSeconds(2), ct: TestContext.Current.CancellationToken);
        Assert.Equal(CellStatus.TimedOut, r.Status);
        Assert.Equal("99-engine-test.ipynb, cell 3 timed out after 2 s; stopped: BlockingListener ×1", r.ErrorValue);
        Assert.False(r.Abandoned);
        Assert.Contains("accepting", h.Out);
        Assert.False(Lab.LabResources.Count().ContainsKey("BlockingListener"));
        Assert.Equal("ok", (await h.RunOk("\"ok\"")).Value!.Text);
    }

    [Fact]
    public async Task ACellThatIgnoresDisposalIsAbandonedAndTheEngineGoesOn()
    {
        await using var h = new EngineHarness(options: new EngineOptions { AbandonAfter = TimeSpan.FromMilliseconds(200) });
        var r = await h.Run("using System.Threading;\nvar gate = new ManualResetEventSlim(); gate.Wait();", timeout: TimeSpan.FromMilliseconds(300), ct: TestContext.Current.CancellationToken);
        Assert.Equal(CellStatus.TimedOut, r.Status);
        Assert.True(r.Abandoned);
        Assert.Contains(r.Traceback, l => l.Contains("abandoned"));
        Assert.Equal("2", (await h.RunOk("1 + 1")).Value!.Text);
    }

    [Fact]
    public async Task CancellationStopsTheCell()
    {
        await using var h = new EngineHarness();
        using var cts = new CancellationTokenSource();
        var run = h.Engine.ExecuteAsync("Console.WriteLine(\"started\"); await Task.Delay(System.Threading.Timeout.Infinite);", h.Context(), cts.Token);
        await WaitUntil(() => h.Out.Contains("started"));
        cts.Cancel();
        var r = await run.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(CellStatus.Cancelled, r.Status);
        Assert.StartsWith("99-engine-test.ipynb, cell 1 was cancelled after", r.ErrorValue);
    }

    [Fact]
    public async Task OutputOfAFinishedCellsThreadLandsInTheRunningCellOrTheLog()
    {
        var stray = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var h = new EngineHarness(options: new EngineOptions { StrayOutput = (_, t) => stray.Enqueue(t) });
        await h.RunOk("""
            using System.Threading;
            var first = new ManualResetEventSlim();
            var second = new ManualResetEventSlim();
            var wrote = new ManualResetEventSlim();
            new Thread(() => { first.Wait(); Console.WriteLine("late line"); wrote.Set(); second.Wait(); Console.WriteLine("stray line"); }).Start();
            """);
        // The thread started in cell 1 writes while cell 2 runs: the text is cell 2's.
        await h.RunOk("first.Set(); wrote.Wait();");
        Assert.Equal("late line\n", h.Out);
        // While no cell runs, the engine's stray-output handler gets it.
        var second = (ManualResetEventSlim)(await h.RunOk("second")).RawValue!;
        second.Set();
        await EngineTests.WaitUntil(() => string.Concat(stray).Contains("stray line"));
        Assert.DoesNotContain("stray line", h.Out);
    }

    [Fact]
    public void IsCompleteTellsWhenASubmissionNeedsMoreLines()
    {
        Assert.True(NotebookEngine.IsComplete("var x = 1;"));
        Assert.True(NotebookEngine.IsComplete("x + 1"));
        Assert.False(NotebookEngine.IsComplete("if (true) {"));
        Assert.False(NotebookEngine.IsComplete("var s = \"\"\"\nabc"));
    }

    internal static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met within 30 s");
            await Task.Delay(20);
        }
    }
}

[CollectionDefinition(nameof(EngineCollection), DisableParallelization = true)]
public class EngineCollection { }
