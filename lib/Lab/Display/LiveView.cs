using Lab.Charts;

namespace Lab.Display;

/// <summary>
/// The frames an experiment pushes into a cell's live display (<c>display(...).Update</c>), as
/// <see cref="LiveFrame"/>s that know which display they belong to and whether they are its last. Only where
/// plotly.js goes depends on that: a front end that replaces a display's output on each update (VS Code, JupyterLab,
/// nbclient) saves the last frame alone, one that appends them (dotnet-repl's ipynb) saves them all. So in a host that
/// leaves plotly.js to the formatter (<see cref="ChartHtml.HostAddsPlotlyJs"/> false: the .NET Interactive kernel),
/// a live display whose first frame brought plotly.js brings it again with its last frame, and with no frame between.
/// </summary>
public sealed class LiveView
{
    readonly Action<object> _update;
    internal bool CarriesPlotlyJs;

    LiveView(Action<object> update) => _update = update;

    /// <summary>A view over <paramref name="update"/> (a cell's <c>view.Update</c>), or null for no live display.</summary>
    public static LiveView? Of(Action<object>? update) => update is null ? null : new LiveView(update);

    /// <summary>Shows an intermediate frame: a figure becomes a <see cref="LiveFrame"/>, anything else shows as it is.</summary>
    public void Frame(object value) => _update(value is Figure f ? new LiveFrame(f, this, Last: false) : value);

    /// <summary>Shows the display's last frame.</summary>
    public void Final(object value)
    {
        var frame = value is Figure f ? new LiveFrame(f, this, Last: true) : value;
        _update(frame);
        JupyterModeDisplay.Value?.Invoke(null, [frame, Array.Empty<string>()]);
    }

    /// <summary>
    /// .NET Interactive 1.0.712001 run as a Jupyter kernel (`dotnet-interactive jupyter`, the `.net-csharp` kernelspec)
    /// sends each <c>Update</c> as update_display_data under a new display id, so no Jupyter front end redraws the display
    /// in place (measured with no lab code: <c>display(HTML("&lt;b&gt;x&lt;/b&gt;"))</c> had display id 5756facf…, its update
    /// e5e1e10a…). There the last frame is also shown as an output of its own, through the kernel's static
    /// <c>Kernel.display</c>; in every other host (Polyglot Notebooks over stdio, dotnet-repl, the lab's engine) this is null.
    /// </summary>
    static readonly Lazy<System.Reflection.MethodInfo?> JupyterModeDisplay = new(() =>
    {
        if (System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name != "Microsoft.DotNet.Interactive.App") return null;
        var args = Environment.GetCommandLineArgs();
        if (args.Length < 2 || args[1] != "jupyter") return null;
        var kernel = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => a.GetName().Name == "Microsoft.DotNet.Interactive")?.GetType("Microsoft.DotNet.Interactive.Kernel");
        return kernel?.GetMethod("display", [typeof(object), typeof(string[])]);
    });
}

/// <summary>One frame of a <see cref="LiveView"/>: a figure, the view it belongs to, and whether it is the view's last.</summary>
public sealed record LiveFrame(Figure Figure, LiveView View, bool Last);
