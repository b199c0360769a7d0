using Lab.Display;
using Microsoft.AspNetCore.Html;

namespace Lab.Cli.Engine;

/// <summary>
/// The members every cell sees without a prefix: <c>display(x)</c> (and its handle's <c>Update(y)</c>) and
/// <c>HTML("...")</c>, the same names Polyglot Notebooks gives, so chapters run in either host.
/// </summary>
public sealed class LabGlobals
{
    readonly NotebookEngine _engine;
    internal LabGlobals(NotebookEngine engine) => _engine = engine;

    /// <summary>Shows a value now, below the cell. Keep the handle to replace it later: <c>d.Update(y)</c>.</summary>
    public DisplayHandle display(object? value, params string[] mimeTypes) => _engine.Display(value, mimeTypes);

    /// <summary>Raw HTML, shown as is.</summary>
    public IHtmlContent HTML(string html) => LabFormatters.Html(html);
}

/// <summary>A shown value that can be replaced in place (Jupyter's update_display_data).</summary>
public sealed class DisplayHandle
{
    readonly NotebookEngine _engine;
    readonly CellContext _ctx;
    readonly string[] _mimeTypes;

    internal DisplayHandle(NotebookEngine engine, CellContext ctx, string id, string[] mimeTypes)
    {
        _engine = engine; _ctx = ctx; DisplayId = id; _mimeTypes = mimeTypes;
    }

    /// <summary>The display's id, unique in the process.</summary>
    public string DisplayId { get; }

    /// <summary>Replaces what this display shows.</summary>
    public void Update(object? value) => _ctx.UpdateDisplay?.Invoke(DisplayId, _engine.Format(value, _mimeTypes));

    public override string ToString() => $"display {DisplayId}";
}
