using System.Diagnostics;
using System.Text.Json.Nodes;
using Lab.Cli.Engine;
using Lab.Display;

namespace Lab.Cli.Notebooks;

/// <summary>One cell's run, for progress lines.</summary>
public sealed record CellProgress(string Notebook, int Cell, int Of, CellResult Result);

/// <summary>A notebook's run: the executed copy (outputs in), and where it stopped if a cell failed.</summary>
public sealed record NotebookRun(Notebook Executed, string Name, TimeSpan Duration, int CodeCells, int CellsRun,
    int? FailedCell, CellResult? Failure)
{
    public bool Succeeded => FailedCell == null;

    /// <summary>"02-handshake.ipynb, cell 5: ..." for a failed run.</summary>
    public string? FailureMessage => Failure?.ErrorValue is { } v ? (v.StartsWith(Name, StringComparison.Ordinal) ? v : $"{Name}, cell {FailedCell}: {v}") : null;
}

/// <summary>
/// Executes a notebook's code cells in order in a fresh engine session, the way nbclient does: outputs in Jupyter's
/// shapes, execution counts 1..N, stopping at the first failing cell (later cells are left unexecuted, as the
/// reader would find them). The source file is only read.
/// </summary>
public static class NotebookRunner
{
    public static async Task<NotebookRun> RunAsync(string path, TimeSpan? timeout = null, PlotlyInclusion plotly = PlotlyInclusion.FirstChartInSession,
        Action<CellProgress>? progress = null, CancellationToken ct = default)
    {
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
        int n = 0, run = 0;
        (int Cell, string Reason)? firstSkip = null;
        foreach (var cell in codeCells)
        {
            ct.ThrowIfCancellationRequested();
            n++;
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
            cell.ExecutionCount = n;
            lock (outputs)
            {
                if (result.Value != null) outputs.Add(Outputs.ExecuteResult(result.Value, n));
                if (!result.Succeeded) outputs.Add(Outputs.Error(result));
            }
            progress?.Invoke(new CellProgress(name, n, codeCells.Count, result));
            if (!result.Succeeded)
            {
                await engine.DisposeAsync();
                Finish(nb);
                return new NotebookRun(nb, name, clock.Elapsed, codeCells.Count, run, n, result);
            }
        }
        await engine.DisposeAsync();
        Finish(nb);
        return new NotebookRun(nb, name, clock.Elapsed, codeCells.Count, run, null, null);
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
