using System.Reflection;
using System.Text;

namespace Lab.Display;

/// <summary>
/// plotly.js as Plotly.NET ships it (an embedded resource of Plotly.NET.dll), so charts render offline: no CDN. The
/// build copies that resource into Lab.dll under the same name (Lab.csproj); nothing of Plotly.NET loads at run time.
/// A page needs plotly.js once. Hosts decide where it goes (see <see cref="PlotlyInclusion"/>): the book writes
/// <see cref="Source"/> once as a file beside its pages, which each page loads; a Jupyter session prepends it to its first chart output only.
/// </summary>
public static class PlotlyJs
{
    static readonly Lazy<(string Name, string Source)> Resource = new(Load);

    /// <summary>The resource's name, which carries plotly.js's version (e.g. "Plotly.NET.plotly-2.28.0.min.js").</summary>
    public static string ResourceName => Resource.Value.Name;

    /// <summary>plotly.min.js's text.</summary>
    public static string Source => Resource.Value.Source;

    /// <summary>
    /// A script element defining <c>window.Plotly</c>, even where a page has RequireJS or CommonJS globals (classic
    /// Jupyter Notebook has RequireJS: plotly's UMD header would otherwise register an anonymous AMD module and
    /// leave <c>window.Plotly</c> undefined). After defining it, it draws the charts that were waiting for it.
    /// </summary>
    public static string ScriptTag()
    {
        var sb = new StringBuilder(Source.Length + 512);
        sb.Append("<script type=\"text/javascript\" data-lab-plotly-js=\"").Append(ResourceName).Append("\">\n");
        sb.Append("(function(define, module, exports){\n");
        // A "</script>" inside the library would end the element early; plotly.min.js has none today, but be safe.
        sb.Append(Source.Replace("</script", "<\\/script"));
        sb.Append("\n}).call(window);\n");
        sb.Append("(window.__labPlotlyWaiting || []).forEach(function(f){ try { f(); } catch (e) { console.error(e); } });\n");
        sb.Append("window.__labPlotlyWaiting = [];\n");
        sb.Append("</script>\n");
        return sb.ToString();
    }

    /// <summary>True when <paramref name="html"/> carries <see cref="ScriptTag"/>.</summary>
    public static bool IsIn(string? html) => html != null && html.Contains("data-lab-plotly-js=", StringComparison.Ordinal);

    static (string, string) Load()
    {
        var asm = typeof(PlotlyJs).Assembly;
        var name = asm.GetManifestResourceNames().FirstOrDefault(n => n.StartsWith("Plotly.NET.plotly-", StringComparison.Ordinal) && n.EndsWith(".min.js", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"plotly.min.js is not embedded in {asm.Location}; the build step _LabExtractPlotlyJs (Lab.csproj) did not run");
        using var stream = asm.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return (name, reader.ReadToEnd());
    }
}

/// <summary>Where a host puts plotly.js relative to chart outputs.</summary>
public enum PlotlyInclusion
{
    /// <summary>Never: the page already has it (the book writes plotly.min.js once beside its pages, and each page loads it).</summary>
    None,
    /// <summary>In the first chart output of a session only (Jupyter front ends, VS Code, executed .ipynb files): later outputs reuse <c>window.Plotly</c>.</summary>
    FirstChartInSession,
    /// <summary>In every chart output (self-contained fragments, e.g. an output copied alone).</summary>
    EveryChart,
}
