using System.Diagnostics;
using System.Text.Json.Nodes;
using Lab.Cli.Engine;
using Lab.Display;

namespace Lab.Cli.Notebooks;

/// <summary>One cell's run, for progress lines.</summary>
public sealed record CellProgress(string Notebook, int Cell, int Of, CellResult Result)
{
    /// <summary>Which run of the notebook this cell belongs to (1-based; above 1 only with a repeat).</summary>
    public int Run { get; init; } = 1;
    /// <summary>How many runs were asked for.</summary>
    public int Runs { get; init; } = 1;
    /// <summary>True for the second of a kept cell's two runs in a row (a set-up cell re-run alone).</summary>
    public bool Again { get; init; }
}

/// <summary>A notebook's run: the executed copy (outputs in), and where it stopped if a cell failed.</summary>
public sealed record NotebookRun(Notebook Executed, string Name, TimeSpan Duration, int CodeCells, int CellsRun,
    int? FailedCell, CellResult? Failure)
{
    /// <summary>Runs of the whole notebook done in the session (the failing one included).</summary>
    public int Runs { get; init; } = 1;

    /// <summary>With a repeat of 2 or more that got through every run: the process's counts after the first and last run.</summary>
    public RepeatCheck? Repeat { get; init; }

    public bool Succeeded => FailedCell == null && Repeat?.Held != false;

    /// <summary>"02-handshake.ipynb, cell 5: ..." for a failed run; "02-handshake.ipynb: ran 10 times in one session; ... grew: ..." for a leak.</summary>
    public string? FailureMessage => Failure?.ErrorValue is { } v
        ? (v.StartsWith(Name, StringComparison.Ordinal) ? v : $"{Name}, cell {FailedCell}: {v}") + (Runs > 1 ? $" (run {Runs} in one session)" : "")
        : Repeat is { Held: false } r ? $"{Name}: ran {r.Runs} times in one session and left more behind each time: {r}" : null;
}

/// <summary>
/// Executes a notebook's code cells in order in a fresh engine session, the way nbclient does: outputs in Jupyter's
/// shapes, execution counts 1..N, stopping at the first failing cell (later cells are left unexecuted, as the
/// reader would find them). The source file is only read.
/// <para>
/// With <c>repeat</c> N above 1, the same session runs every code cell N times over, as an instructor re-running
/// the chapter in one kernel: execution counts go on rising, the executed copy holds the last run's outputs, and
/// the process's open fds and threads after the last run are compared with those after the first
/// (<see cref="RepeatCheck"/>): a chapter whose cells are not safe to re-run leaves more behind each time. From the
/// second run on, each cell that keeps objects (<c>Keep.One</c>, <c>Keep.Many</c>) runs twice in a row, as a set-up
/// cell re-run without its clean-up cell.
/// </para>
/// </summary>
public static class NotebookRunner
{
    /// <summary>The most runs <c>repeat</c> takes.</summary>
    public const int MaxRepeat = 100;

    /// <summary>True for a cell that keeps an object across re-runs (<c>Keep.One</c>, <c>Keep.Many</c>).</summary>
    internal static bool KeepsObjects(NotebookCell cell) => cell.Source.Contains("Keep.One(", StringComparison.Ordinal) || cell.Source.Contains("Keep.Many<", StringComparison.Ordinal);

    public static async Task<NotebookRun> RunAsync(string path, TimeSpan? timeout = null, PlotlyInclusion plotly = PlotlyInclusion.FirstChartInSession,
        Action<CellProgress>? progress = null, CancellationToken ct = default, int repeat = 1)
    {
        if (repeat is < 1 or > MaxRepeat)
            throw new ArgumentOutOfRangeException(nameof(repeat), repeat, $"repeat = {repeat}: run a notebook 1 to {MaxRepeat} times in one session.");
        var nb = Notebook.Load(path);
        var name = System.IO.Path.GetFileName(path);
        var clock = Stopwatch.StartNew();
        var codeCells = nb.Cells.Where(c => c.IsCode && !string.IsNullOrWhiteSpace(c.Source)).ToList();
        NotebookCell? lastCell = null;
        await using var engine = new NotebookEngine(new EngineOptions
        {
            Plotly = plotly,
            DefaultTimeout = timeout ?? new EngineOptions().DefaultTimeout,
            // Output from a finished cell's threads while no cell runs goes to the last cell that ran.
            StrayOutput = (stream, text) => { if (lastCell is { } c) Outputs.AppendStream(c.Outputs, stream, text); },
        });
        int run = 0, count = 0;
        ProcessCounts? first = null;
        for (int pass = 1; pass <= repeat; pass++)
        {
            int n = 0;
            (int Cell, string Reason)? firstSkip = null;
            foreach (var c in codeCells) lock (c.Outputs) c.Outputs.Clear();
            // Each saved copy is the last run's outputs, so it carries plotly.js in its own first chart: without this,
            // the first run's chart took it and a --repeat copy (CI's artifacts/run/) drew no chart when opened.
            engine.ResetPlotlySession();
            // From the second run on, a cell that keeps what it makes (Keep.One, Keep.Many) runs twice in a row: an
            // instructor re-running a set-up cell without its clean-up cell. The first of the two runs' objects must be
            // disposed by the second, or the counts after this run exceed those after the first.
            var cells = pass == 1 ? codeCells : codeCells.SelectMany(c => KeepsObjects(c) ? new[] { c, c } : new[] { c });
            NotebookCell? previous = null;
            foreach (var cell in cells)
            {
                ct.ThrowIfCancellationRequested();
                bool again = ReferenceEquals(cell, previous);
                if (!again) n++;
                else lock (cell.Outputs)
                {
                    // The outputs about to go may be the ones that carried plotly.js: the re-run carries it again.
                    if (cell.Outputs.Any(o => PlotlyJs.IsIn(o.ToJsonString()))) engine.ResetPlotlySession();
                    cell.Outputs.Clear();
                }
                previous = cell;
                count++;
                var outputs = cell.Outputs;
                var displays = new Dictionary<string, JsonObject>();
                var ctx = new CellContext
                {
                    NotebookPath = nb.Path, CellNumber = n, Timeout = timeout,
                    Stdout = t => Outputs.AppendStream(outputs, "stdout", t),
                    Stderr = t => Outputs.AppendStream(outputs, "stderr", t),
                    Display = (bundle, id) =>
                    {
                        var o = Outputs.DisplayData(bundle);
                        lock (outputs) { outputs.Add(o); displays[id] = o; }
                    },
                    UpdateDisplay = (id, bundle) =>
                    {
                        lock (outputs) if (displays.TryGetValue(id, out var o)) o["data"] = Outputs.Data(Outputs.KeepPlotlyJs(Outputs.ReadData(o), bundle));
                    },
                    Input = _ => null,
                };
                var result = await engine.ExecuteAsync(cell.Source, ctx, ct);
                if (result.Status == CellStatus.Skipped && result.ErrorValue != null) firstSkip ??= (n, result.ErrorValue.Split(". ")[0]);
                else if (!result.Succeeded && firstSkip is { } root && UsesWhatASkippedCellMade(result))
                {
                    // A skipped cell's variables exist but were never set; a later cell that uses them is skipped too,
                    // not failed: the reason is the capability the earlier cell named.
                    var reason = $"it depends on cell {root.Cell}, which was skipped ({root.Reason})";
                    Outputs.AppendStream(outputs, "stdout", $"Skipped: {reason}.\n");
                    result = new CellResult { Status = CellStatus.Skipped, ErrorValue = reason, Duration = result.Duration };
                }
                lastCell = cell;
                run++;
                cell.ExecutionCount = count;
                lock (outputs)
                {
                    if (result.Value != null) outputs.Add(Outputs.ExecuteResult(result.Value, count));
                    if (!result.Succeeded) outputs.Add(Outputs.Error(result));
                }
                progress?.Invoke(new CellProgress(name, n, codeCells.Count, result) { Run = pass, Runs = repeat, Again = again });
                if (!result.Succeeded)
                {
                    await engine.DisposeAsync();
                    Finish(nb);
                    return new NotebookRun(nb, name, clock.Elapsed, codeCells.Count, run, n, result) { Runs = pass };
                }
            }
            if (repeat > 1 && pass == 1) first = await SettledAsync(null, ct);
        }
        RepeatCheck? check = null;
        if (repeat > 1)
        {
            var since = Stopwatch.StartNew();
            var last = await SettledAsync(first!, ct);
            check = new RepeatCheck(repeat, first!, last, since.Elapsed);
        }
        await engine.DisposeAsync();
        Finish(nb);
        return new NotebookRun(nb, name, clock.Elapsed, codeCells.Count, run, null, null) { Runs = repeat, Repeat = check };
    }

    /// <summary>
    /// The process's counts once they settle: after the first run, two readings 200 ms apart that agree (at most
    /// 5 s); after the last, the first reading that holds against <paramref name="first"/> (at most 10 s: a stopped
    /// topology's threads and a cell's thread end a moment after the cell). Garbage is collected before each
    /// reading, so an fd that only a finalizer would close counts only if it is still reachable.
    /// </summary>
    static async Task<ProcessCounts> SettledAsync(ProcessCounts? first, CancellationToken ct)
    {
        var limit = Stopwatch.StartNew();
        ProcessCounts? previous = null;
        while (true)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var now = ProcessCounts.Read();
            if (first is not null && new RepeatCheck(2, first, now, TimeSpan.Zero).Held) return now;
            if (first is null && previous is not null && previous.Fds.Count == now.Fds.Count
                && ProcessCounts.Grown(previous.OwnThreads, now.OwnThreads).Count == 0 && ProcessCounts.Grown(now.OwnThreads, previous.OwnThreads).Count == 0)
                return now;
            if (limit.Elapsed > TimeSpan.FromSeconds(first is null ? 5 : 10)) return now;
            previous = now;
            await Task.Delay(200, ct);
        }
    }

    /// <summary>Errors that come from reaching for something a skipped cell did not make (not a failed check).</summary>
    static bool UsesWhatASkippedCellMade(CellResult r) =>
        r.ErrorName is nameof(NullReferenceException) or nameof(ArgumentNullException) or nameof(ObjectDisposedException)
        || (r.ErrorValue ?? "").Contains("CS0103") || (r.ErrorValue ?? "").Contains("CS0165");

    static void Finish(Notebook nb)
    {
        foreach (var c in nb.Cells.Where(c => c.IsCode)) Outputs.NormalizeStreams(c.Outputs);
    }

    /// <summary>The chapters in a folder: NN-*.ipynb, sorted by name.</summary>
    public static IReadOnlyList<string> Chapters(string folder) =>
        Directory.GetFiles(folder, "*.ipynb")
            .Where(f => System.Text.RegularExpressions.Regex.IsMatch(System.IO.Path.GetFileName(f), @"^\d+-.*\.ipynb$"))
            .OrderBy(f => System.IO.Path.GetFileName(f), StringComparer.Ordinal)
            .ToList();
}
