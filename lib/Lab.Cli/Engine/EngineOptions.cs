using Lab.Display;

namespace Lab.Cli.Engine;

/// <summary>Settings of a <see cref="NotebookEngine"/>.</summary>
public sealed class EngineOptions
{
    /// <summary>How long a cell may run when its context gives no timeout. Defaults to 120 s.</summary>
    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>How long disposing what a stopped cell started may take in all. Defaults to 10 s.</summary>
    public TimeSpan DisposeBudget { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a stopped cell's thread may take to return once its resources are disposed, before the engine leaves it behind. Defaults to 5 s.</summary>
    public TimeSpan AbandonAfter { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Where plotly.js goes relative to chart outputs. Defaults to <see cref="PlotlyInclusion.FirstChartInSession"/>
    /// (Jupyter front ends and executed .ipynb files); the book uses <see cref="PlotlyInclusion.None"/> and loads
    /// plotly.js from one file beside its pages. Can be changed between cells with <see cref="NotebookEngine.Plotly"/>.
    /// </summary>
    public PlotlyInclusion Plotly { get; init; } = PlotlyInclusion.FirstChartInSession;

    /// <summary>DLLs referenced before the first cell, as if by <c>#r</c> (the REPL passes Lab.dll).</summary>
    public IReadOnlyList<string> References { get; init; } = Array.Empty<string>();

    /// <summary>Namespaces imported before the first cell, beside the engine's defaults (System, System.Linq, ...).</summary>
    public IReadOnlyList<string> Imports { get; init; } = Array.Empty<string>();

    /// <summary>
    /// Output written by threads of cells that have ended while no cell runs (a server started in cell 2 logging
    /// later): stream name ("stdout"/"stderr") and text. Defaults to the process's real stderr.
    /// </summary>
    public Action<string, string>? StrayOutput { get; init; }
}
