using System.Net;
using System.Text;
using Lab.Charts;

namespace Lab.Display;

/// <summary>
/// HTML for a <see cref="Figure"/>: a div and a small script that calls <c>Plotly.newPlot</c> once <c>window.Plotly</c>
/// exists. plotly.js itself is not in the fragment: see <see cref="PlotlyJs"/> and <see cref="PlotlyInclusion"/>.
/// </summary>
public static class ChartHtml
{
    /// <summary>Attribute on every chart div; hosts look for it to know an HTML output holds a chart.</summary>
    public const string Marker = "data-lab-plotly";

    /// <summary>True when an HTML output contains a chart made by <see cref="Fragment"/>.</summary>
    public static bool ContainsChart(string? html) => html != null && html.Contains(Marker, StringComparison.Ordinal);

    /// <summary>The chart's div and drawing script, without plotly.js.</summary>
    public static string Fragment(Figure chart)
    {
        var id = "lab-plot-" + Guid.NewGuid().ToString("N")[..12];
        var style = new StringBuilder();
        style.Append(chart.Width is int width ? $"width:{width}px;" : "width:100%;");
        style.Append(chart.Height is int height ? $"height:{height}px;" : "height:450px;");
        var json = chart.ToJson().Replace("</", "<\\/");
        return $$"""
<div id="{{id}}" class="lab-plot" {{Marker}}="1" style="{{style}}"></div>
<script type="text/javascript">
(function(){
  var fig = {{json}};
  function draw(){ var el = document.getElementById('{{id}}'); if (el) window.Plotly.newPlot(el, fig.data || [], fig.layout || {}, Object.assign({responsive: true}, fig.config || {})); }
  if (window.Plotly) { draw(); } else { (window.__labPlotlyWaiting = window.__labPlotlyWaiting || []).push(draw); }
})();
</script>
""";
    }

    /// <summary>
    /// Set by a host that decides itself where plotly.js goes (the lab's engine, after formatting, by its
    /// <see cref="PlotlyInclusion"/>). In any other host (the .NET Interactive kernel: Polyglot Notebooks, `.net-csharp`,
    /// dotnet-repl), nothing but the formatter can put plotly.js on the page, so <see cref="Formatted(Figure)"/> and
    /// <see cref="Formatted(LiveFrame)"/> prepend it to the first chart formatted in this process, and the later charts
    /// reuse <c>window.Plotly</c>.
    /// </summary>
    public static bool HostAddsPlotlyJs { get; set; }

    static int _formattedWithPlotlyJs;

    /// <summary>What the HTML formatter of a <see cref="Figure"/> gives: see <see cref="HostAddsPlotlyJs"/>.</summary>
    public static string Formatted(Figure chart) =>
        !HostAddsPlotlyJs && Interlocked.Exchange(ref _formattedWithPlotlyJs, 1) == 0 ? WithPlotlyJs(Fragment(chart)) : Fragment(chart);

    /// <summary>
    /// What the HTML formatter of a <see cref="LiveFrame"/> gives: as <see cref="Formatted(Figure)"/>, and a live display whose
    /// frame brought plotly.js brings it again with its last frame (the one a front end that replaces outputs keeps).
    /// </summary>
    public static string Formatted(LiveFrame frame)
    {
        if (HostAddsPlotlyJs) return Fragment(frame.Figure);
        bool first = Interlocked.Exchange(ref _formattedWithPlotlyJs, 1) == 0;
        if (first) frame.View.CarriesPlotlyJs = true;
        return first || (frame.Last && frame.View.CarriesPlotlyJs) ? WithPlotlyJs(Fragment(frame.Figure)) : Fragment(frame.Figure);
    }

    /// <summary>The fragment with plotly.js prepended, for <see cref="PlotlyInclusion.EveryChart"/> or a first output.</summary>
    public static string WithPlotlyJs(string fragmentHtml) => PlotlyJs.ScriptTag() + fragmentHtml;

    /// <summary>A standalone HTML page holding one chart (the REPL writes these to files).</summary>
    public static string Page(Figure chart, string title = "chart") =>
        $"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{WebUtility.HtmlEncode(title)}</title>\n{PlotlyJs.ScriptTag()}</head>\n<body>\n{Fragment(chart)}\n</body></html>\n";

    /// <summary>Plain text standing in for a chart where HTML cannot show (a terminal, text/plain).</summary>
    public static string Text(Figure chart)
    {
        var types = chart.TraceTypes;
        return $"Plotly chart: {types.Count} trace(s) ({string.Join(", ", types.Distinct())})";
    }
}
