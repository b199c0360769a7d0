using System.Runtime.CompilerServices;
using Microsoft.DotNet.Interactive.Formatting;
using Lab.Charts;

namespace Lab.Display;

/// <summary>
/// The lab's formatters for Microsoft.DotNet.Interactive.Formatting, registered when Lab.dll loads, so every host
/// (the lab's engine, Polyglot Notebooks) shows lab values the same way. A reading type adds its own with one line:
/// <code>LabFormatters.Register&lt;QueueReading&gt;(r =&gt; $"&lt;b&gt;{r.Queued}&lt;/b&gt;", r =&gt; $"{r.Queued} queued");</code>
/// Put that line in a <c>[ModuleInitializer]</c> beside the type, or in <see cref="RegisterAll"/>.
/// </summary>
public static class LabFormatters
{
    public const string HtmlMime = "text/html";
    public const string TextMime = "text/plain";

    static int _registered;

#pragma warning disable CA2255 // a library registering its own formatters on load is what module initializers are for
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void OnLoad() => RegisterAll();

    /// <summary>Registers every lab formatter. Idempotent; runs when Lab.dll loads.</summary>
    public static void RegisterAll()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        Register<Figure>(ChartHtml.Formatted, ChartHtml.Text);
        Register<LiveFrame>(ChartHtml.Formatted, f => ChartHtml.Text(f.Figure));
        TableFormatter.Register();
        ReadingFormatters.Register();
    }

    /// <summary>Registers HTML and plain-text formatters for <typeparamref name="T"/> (and types derived from it).</summary>
    public static void Register<T>(Func<T, string> html, Func<T, string> text)
    {
        Formatter.Register<T>(html, HtmlMime);
        Formatter.Register<T>(text, TextMime);
    }

    /// <summary>
    /// The mime bundle a host shows for a value: text/plain always, text/html too unless the value is plain text
    /// or a scalar. Jupyter front ends pick the richest they can show; a terminal uses text/plain.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Bundle(object? value)
    {
        RegisterAll();
        var bundle = new Dictionary<string, string>(StringComparer.Ordinal);
        if (value is null) { bundle[TextMime] = "<null>"; return bundle; }
        if (value is string s) { bundle[TextMime] = s; return bundle; }
        if (value is Microsoft.AspNetCore.Html.IHtmlContent)
        {
            bundle[HtmlMime] = Formatter.ToDisplayString(value, HtmlMime);
            bundle[TextMime] = bundle[HtmlMime];
            return bundle;
        }
        bundle[TextMime] = Formatter.ToDisplayString(value, TextMime);
        if (!IsScalar(value.GetType())) bundle[HtmlMime] = Formatter.ToDisplayString(value, HtmlMime);
        return bundle;
    }

    /// <summary>Raw HTML to display as is (what Polyglot's <c>HTML("...")</c> returns).</summary>
    public static Microsoft.AspNetCore.Html.IHtmlContent Html(string html) => new Microsoft.AspNetCore.Html.HtmlString(html);

    static bool IsScalar(Type t) =>
        t.IsPrimitive || t.IsEnum || t == typeof(decimal) || t == typeof(DateTime) || t == typeof(DateTimeOffset)
        || t == typeof(TimeSpan) || t == typeof(Guid) || t == typeof(Uri) || t == typeof(System.Net.IPAddress)
        || t == typeof(System.Net.IPEndPoint) || t == typeof(char);
}
