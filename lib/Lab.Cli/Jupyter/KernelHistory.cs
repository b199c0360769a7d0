using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Lab.Cli.Jupyter;

/// <summary>
/// The kernel's input history for history_request: every execute_request with store_history, in this process's one
/// session (numbered 1, as IPython numbers sessions), with its execution count and text/plain result.
/// Answers "tail", "range" and "search" (glob pattern, optionally unique) the way IPython's HistoryManager does.
/// </summary>
public sealed class KernelHistory
{
    public const int SessionNumber = 1;

    readonly record struct Entry(int Line, string Input, string? Output);
    readonly List<Entry> _entries = new();

    public void Add(int executionCount, string input, string? output)
    {
        lock (_entries) _entries.Add(new Entry(executionCount, input, output));
    }

    public void Clear() { lock (_entries) _entries.Clear(); }

    /// <summary>The reply's "history" list for a history_request's content.</summary>
    public JsonArray Query(JsonObject request)
    {
        List<Entry> all;
        lock (_entries) all = _entries.ToList();
        var output = (bool?)request["output"] ?? false;
        var type = (string?)request["hist_access_type"] ?? "tail";
        var n = request["n"] is JsonValue nv && nv.TryGetValue<int>(out var ni) ? ni : (int?)null;
        IEnumerable<Entry> selected = type switch
        {
            "range" => Range(all, request),
            "search" => Search(all, (string?)request["pattern"] ?? "*", (bool?)request["unique"] ?? false, n),
            _ => n is { } count ? all.TakeLast(Math.Max(0, count)) : all,
        };
        var result = new JsonArray();
        foreach (var e in selected)
        {
            JsonNode item = output ? new JsonArray(e.Input, e.Output) : JsonValue.Create(e.Input)!;
            result.Add(new JsonArray(SessionNumber, e.Line, item));
        }
        return result;
    }

    static IEnumerable<Entry> Range(List<Entry> all, JsonObject request)
    {
        // session: 0 or this session's number is this session; a negative number counts back (none earlier here).
        var session = request["session"] is JsonValue sv && sv.TryGetValue<int>(out var s) ? s : 0;
        if (session != 0 && session != SessionNumber) return Array.Empty<Entry>();
        var start = request["start"] is JsonValue a && a.TryGetValue<int>(out var st) ? st : 0;
        var stop = request["stop"] is JsonValue b && b.TryGetValue<int>(out var sp) ? sp : (int?)null;
        return all.Where(e => e.Line >= start && (stop == null || e.Line < stop));
    }

    static IEnumerable<Entry> Search(List<Entry> all, string pattern, bool unique, int? n)
    {
        var regex = new Regex("^" + Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$", RegexOptions.Singleline);
        var matches = all.Where(e => regex.IsMatch(e.Input)).ToList();
        if (unique)
        {
            // Keep each input's latest occurrence, in order.
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var kept = new List<Entry>();
            for (int i = matches.Count - 1; i >= 0; i--)
                if (seen.Add(matches[i].Input)) kept.Add(matches[i]);
            kept.Reverse();
            matches = kept;
        }
        return n is { } count ? matches.TakeLast(Math.Max(0, count)) : matches;
    }
}
