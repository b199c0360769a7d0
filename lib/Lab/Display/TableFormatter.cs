using System.Collections;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.DotNet.Interactive.Formatting;

namespace Lab.Display;

/// <summary>
/// Small tables for records and sequences of records (and anonymous objects): one column per public property,
/// one row per item, at most <see cref="MaxRows"/> rows. HTML for notebooks, aligned text for terminals.
/// Other values fall through to the Formatting library's defaults.
/// </summary>
public static class TableFormatter
{
    /// <summary>Rows shown before "… N more". Defaults to 50.</summary>
    public static int MaxRows { get; set; } = 50;

    internal static void Register()
    {
        // Dictionaries (counts by state, counter values) as two-column tables; the library's default printed nothing.
        Formatter.Register(typeof(IDictionary), (FormatDelegate<object>)((value, ctx) => WriteDictionary((IDictionary)value, ctx, html: true)), LabFormatters.HtmlMime);
        Formatter.Register(typeof(IDictionary), (FormatDelegate<object>)((value, ctx) => WriteDictionary((IDictionary)value, ctx, html: false)), LabFormatters.TextMime);
        Formatter.Register(typeof(IEnumerable), (FormatDelegate<object>)((value, ctx) => TryWrite(value, ctx, html: true)), LabFormatters.HtmlMime);
        Formatter.Register(typeof(IEnumerable), (FormatDelegate<object>)((value, ctx) => TryWrite(value, ctx, html: false)), LabFormatters.TextMime);
        // A string is an IEnumerable too: without its own formatter it reached the one above, which declines it, and
        // the library then wrote nothing (strings inside records printed blank in text/plain: the REPL, jupyter console).
        Formatter.Register(typeof(string), (FormatDelegate<object>)((value, ctx) => { ctx.Writer.Write((string)value); return true; }), LabFormatters.TextMime);
        Formatter.Register(typeof(object), (FormatDelegate<object>)((value, ctx) => IsRow(value.GetType()) && TryWrite(new[] { value }, ctx, html: true, single: true)), LabFormatters.HtmlMime);
        // HTML (what HTML("...") returns) writes itself. Without this the catch-all above took it, declined it, and the
        // library wrote nothing: in the .NET Interactive kernel a live view's placeholder, display(HTML("starting…")),
        // showed blank once Lab.dll had loaded.
        Formatter.Register(typeof(Microsoft.AspNetCore.Html.IHtmlContent), (FormatDelegate<object>)((value, ctx) =>
        {
            ((Microsoft.AspNetCore.Html.IHtmlContent)value).WriteTo(ctx.Writer, System.Text.Encodings.Web.HtmlEncoder.Default);
            return true;
        }), LabFormatters.HtmlMime);
    }

    static bool WriteDictionary(IDictionary d, FormatContext ctx, bool html)
    {
        if (ctx.Depth > 1) return false;
        var rows = d.Keys.Cast<object>().Take(MaxRows).Select(k => (Key: Cell(k), Value: Cell(d[k]))).ToList();
        if (html)
        {
            var sb = new StringBuilder("<table class=\"lab-table\"><thead><tr><th>key</th><th>value</th></tr></thead><tbody>");
            foreach (var (k, v) in rows) sb.Append($"<tr><td>{System.Net.WebUtility.HtmlEncode(k)}</td><td>{System.Net.WebUtility.HtmlEncode(v)}</td></tr>");
            ctx.Writer.Write(sb.Append("</tbody></table>").ToString());
        }
        else
        {
            int w = rows.Select(r => r.Key.Length).DefaultIfEmpty(0).Max();
            ctx.Writer.Write(rows.Count == 0 ? "(empty)" : string.Join("\n", rows.Select(r => r.Key.PadRight(w) + "  " + r.Value)));
        }
        return true;
    }

    /// <summary>True for the types shown as table rows: records (class or struct) and anonymous types.</summary>
    public static bool IsRow(Type t)
    {
        if (t.IsPrimitive || t == typeof(string)) return false;
        if (t.GetMethod("PrintMembers", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public, null, new[] { typeof(StringBuilder) }, null) != null)
            return true;
        return t.IsDefined(typeof(CompilerGeneratedAttribute), false) && t.Name.Contains("AnonymousType", StringComparison.Ordinal);
    }

    /// <summary>The table as aligned plain text, or null when the value is not a sequence of rows.</summary>
    public static string? ToText(object value) => Rows(value) is { } r ? Text(r.Type, r.Items, r.More) : null;

    /// <summary>The table as HTML, or null when the value is not a sequence of rows.</summary>
    public static string? ToHtml(object value) => Rows(value) is { } r ? Html(r.Type, r.Items, r.More) : null;

    static bool TryWrite(object value, FormatContext ctx, bool html, bool single = false)
    {
        if (ctx.Depth > 1) return false;
        var rows = Rows(value);
        // A sequence of plain values (int[], string[]) is no table: it prints as a list. Declined, the library wrote
        // nothing for it, in both hosts.
        if (rows == null && !single && value is IEnumerable and not string and not IDictionary)
        {
            var all = ((IEnumerable)value).Cast<object?>().Take(MaxRows + 1).ToList();
            var list = "[" + string.Join(", ", all.Take(MaxRows).Select(Cell)) + (all.Count > MaxRows ? ", …" : "") + "]";
            ctx.Writer.Write(html ? "<pre>" + System.Net.WebUtility.HtmlEncode(list) + "</pre>" : list);
            return true;
        }
        if (rows == null) return false;
        ctx.Writer.Write(html ? Html(rows.Value.Type, rows.Value.Items, rows.Value.More) : Text(rows.Value.Type, rows.Value.Items, rows.Value.More));
        return true;
    }

    static (Type Type, List<object> Items, int More)? Rows(object value)
    {
        if (value is string || value is IDictionary || value is not IEnumerable seq) return null;
        var type = ElementType(value.GetType());
        var items = new List<object>();
        int more = 0;
        foreach (var item in seq)
        {
            if (item == null) return null;
            type ??= item.GetType();
            if (!type.IsInstanceOfType(item) || !IsRow(item.GetType())) return null;
            if (items.Count < MaxRows) items.Add(item); else more++;
        }
        if (type == null || !IsRow(type) && items.Count == 0) return null;
        if (!IsRow(type)) type = items[0].GetType();
        return (type, items, more);
    }

    static Type? ElementType(Type t)
    {
        if (t.IsArray) return t.GetElementType();
        var e = t.GetInterfaces().Append(t).FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
        var el = e?.GetGenericArguments()[0];
        return el == typeof(object) ? null : el;
    }

    static PropertyInfo[] Columns(Type t) =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetIndexParameters().Length == 0 && p.Name != "EqualityContract").ToArray();

    static string Cell(object? v) => v switch
    {
        null => "",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        float f => f.ToString("G6", CultureInfo.InvariantCulture),
        // Readings are taken within one run: the time of day to the microsecond (kernel timestamps have that) says more than the date.
        DateTime t => t.ToString("HH:mm:ss.ffffff", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable e and not string => "[" + string.Join(", ", e.Cast<object?>().Take(8).Select(Cell)) + (e.Cast<object?>().Skip(8).Any() ? ", …" : "") + "]",
        _ => v.ToString() ?? "",
    };

    static bool IsNumeric(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        return t.IsPrimitive && t != typeof(bool) && t != typeof(char) || t == typeof(decimal);
    }

    static string Html(Type type, List<object> items, int more)
    {
        var cols = Columns(type);
        var sb = new StringBuilder();
        sb.Append("<table class=\"lab-table\"><thead><tr>");
        foreach (var c in cols) sb.Append("<th>").Append(WebUtility.HtmlEncode(c.Name)).Append("</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var item in items)
        {
            sb.Append("<tr>");
            foreach (var c in cols)
            {
                var align = IsNumeric(c.PropertyType) ? " style=\"text-align:right\"" : "";
                sb.Append("<td").Append(align).Append('>').Append(WebUtility.HtmlEncode(Cell(c.GetValue(item)))).Append("</td>");
            }
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table>");
        if (more > 0) sb.Append("<div class=\"lab-table-more\">… ").Append(more).Append(" more rows</div>");
        return sb.ToString();
    }

    static string Text(Type type, List<object> items, int more)
    {
        var cols = Columns(type);
        var cells = items.Select(i => cols.Select(c => Cell(c.GetValue(i))).ToArray()).ToList();
        var widths = cols.Select((c, j) => Math.Max(c.Name.Length, cells.Count == 0 ? 0 : cells.Max(r => r[j].Length))).ToArray();
        var sb = new StringBuilder();
        sb.AppendJoin("  ", cols.Select((c, j) => IsNumeric(c.PropertyType) ? c.Name.PadLeft(widths[j]) : c.Name.PadRight(widths[j]))).TrimEnd().AppendLine();
        sb.AppendJoin("  ", widths.Select(w => new string('-', w))).AppendLine();
        foreach (var r in cells)
            sb.AppendJoin("  ", r.Select((v, j) => IsNumeric(cols[j].PropertyType) ? v.PadLeft(widths[j]) : v.PadRight(widths[j]))).TrimEnd().AppendLine();
        if (more > 0) sb.Append("… ").Append(more).AppendLine(" more rows");
        return sb.ToString().TrimEnd('\n', '\r');
    }
}

static class StringBuilderExtensions
{
    public static StringBuilder TrimEnd(this StringBuilder sb)
    {
        while (sb.Length > 0 && sb[^1] == ' ') sb.Length--;
        return sb;
    }
}
