using System.Text.Json.Nodes;
using Lab.Cli.Engine;
using Lab.Display;

namespace Lab.Cli.Notebooks;

/// <summary>Jupyter's output objects (nbformat 4), built from what the engine reports.</summary>
public static class Outputs
{
    public static JsonObject Stream(string name, string text) => new()
    {
        ["output_type"] = "stream", ["name"] = name, ["text"] = text,
    };

    public static JsonObject DisplayData(MimeBundle bundle) => new()
    {
        ["output_type"] = "display_data", ["data"] = Data(bundle), ["metadata"] = new JsonObject(),
    };

    public static JsonObject ExecuteResult(MimeBundle bundle, int executionCount) => new()
    {
        ["output_type"] = "execute_result", ["execution_count"] = executionCount, ["data"] = Data(bundle), ["metadata"] = new JsonObject(),
    };

    public static JsonObject Error(CellResult r)
    {
        var tb = new JsonArray();
        foreach (var l in r.Traceback) tb.Add(l);
        return new JsonObject
        {
            ["output_type"] = "error", ["ename"] = r.ErrorName ?? "Error", ["evalue"] = r.ErrorValue ?? "", ["traceback"] = tb,
        };
    }

    public static JsonObject Data(MimeBundle bundle)
    {
        var data = new JsonObject();
        foreach (var (mime, content) in bundle) data[mime] = Notebook.WriteText(content);
        return data;
    }

    /// <summary>A bundle that carries plotly.js, for <see cref="KeepPlotlyJs"/>'s first argument where only the rule matters.</summary>
    public static readonly MimeBundle WithPlotlyJs = new() { ["text/html"] = PlotlyJs.ScriptTag() };

    /// <summary>
    /// The bundle that replaces <paramref name="old"/> in a saved notebook. plotly.js travels with the session's first
    /// chart only; when that chart is a live display, each update replaces the output that carried it, and the saved
    /// notebook could then draw none of its charts. So an update of an output that carried plotly.js carries it on.
    /// </summary>
    public static MimeBundle KeepPlotlyJs(MimeBundle old, MimeBundle next)
    {
        if (!PlotlyJs.IsIn(old.Html) || PlotlyJs.IsIn(next.Html)) return next;
        var kept = new MimeBundle(next)
        {
            ["text/html"] = PlotlyJs.ScriptTag() + (next.Html ?? "<pre>" + System.Net.WebUtility.HtmlEncode(next.Text) + "</pre>"),
        };
        return kept;
    }

    /// <summary>A bundle back from an output's "data".</summary>
    public static MimeBundle ReadData(JsonObject output)
    {
        var b = new MimeBundle();
        if (output["data"] is JsonObject data)
            foreach (var (mime, node) in data) b[mime] = node is JsonArray or JsonValue ? Notebook.ReadText(node) : node?.ToJsonString() ?? "";
        return b;
    }

    /// <summary>Streams kept as Jupyter front ends keep them: consecutive text to the same stream is one output, split into lines on writing.</summary>
    public static void AppendStream(List<JsonObject> outputs, string name, string text)
    {
        lock (outputs)
        {
            if (outputs.Count > 0 && outputs[^1] is var last && (string?)last["output_type"] == "stream" && (string?)last["name"] == name)
            {
                last["text"] = Notebook.ReadText(last["text"]) + text;
                return;
            }
            outputs.Add(Stream(name, text));
        }
    }

    /// <summary>Streams as line lists, the way Jupyter writes them to disk.</summary>
    public static void NormalizeStreams(List<JsonObject> outputs)
    {
        lock (outputs)
            foreach (var o in outputs.Where(o => (string?)o["output_type"] == "stream"))
                o["text"] = Notebook.WriteText(Notebook.ReadText(o["text"]));
    }
}
