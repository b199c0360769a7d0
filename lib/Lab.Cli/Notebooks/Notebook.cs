using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lab.Cli.Notebooks;

/// <summary>
/// An .ipynb file (nbformat 4): cells with their sources and metadata, the notebook's metadata kept as read.
/// Outputs are dropped on reading (chapters are committed without them; the runner makes fresh ones) and written
/// in Jupyter's shapes. Written files are nbformat 4.5: every cell has an id.
/// </summary>
public sealed class Notebook
{
    public JsonObject Metadata { get; set; } = new();
    public List<NotebookCell> Cells { get; } = new();
    public int NbFormat { get; set; } = 4;
    public int NbFormatMinor { get; set; } = 5;

    /// <summary>The file it was read from, when it was.</summary>
    public string? Path { get; set; }

    /// <summary>The text of the first markdown heading ("# Title"), or null.</summary>
    public string? Title
    {
        get
        {
            foreach (var c in Cells.Where(c => c.CellType == "markdown"))
                foreach (var line in c.Source.Split('\n'))
                {
                    var t = line.Trim();
                    if (t.StartsWith('#')) return t.TrimStart('#').Trim();
                }
            return null;
        }
    }

    /// <summary>Reads a notebook; outputs are dropped unless <paramref name="keepOutputs"/> (reading an executed copy).</summary>
    public static Notebook Load(string path, bool keepOutputs = false)
    {
        var nb = Parse(File.ReadAllText(path), keepOutputs);
        nb.Path = System.IO.Path.GetFullPath(path);
        return nb;
    }

    public static Notebook Parse(string json, bool keepOutputs = false)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new FormatException("not a notebook: the top level is not a JSON object");
        var nb = new Notebook
        {
            Metadata = root["metadata"] as JsonObject is { } m ? (JsonObject)m.DeepClone() : new JsonObject(),
            NbFormat = (int?)root["nbformat"] ?? 4,
            NbFormatMinor = (int?)root["nbformat_minor"] ?? 5,
        };
        if (nb.NbFormat != 4) throw new FormatException($"nbformat {nb.NbFormat} is not supported (only 4)");
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in root["cells"] as JsonArray ?? new JsonArray())
        {
            if (node is not JsonObject c) continue;
            var cell = new NotebookCell
            {
                CellType = (string?)c["cell_type"] ?? "code",
                Source = ReadText(c["source"]),
                Metadata = c["metadata"] as JsonObject is { } cm ? (JsonObject)cm.DeepClone() : new JsonObject(),
                Attachments = c["attachments"] is JsonObject a ? (JsonObject)a.DeepClone() : null,
                Id = (string?)c["id"] ?? "",
            };
            if (cell.Id.Length == 0 || !ids.Add(cell.Id)) { cell.Id = NewId(ids); }
            if (keepOutputs && cell.IsCode)
            {
                cell.ExecutionCount = (int?)c["execution_count"];
                foreach (var o in c["outputs"] as JsonArray ?? new JsonArray())
                    if (o is JsonObject output) cell.Outputs.Add((JsonObject)output.DeepClone());
            }
            nb.Cells.Add(cell);
        }
        return nb;
    }

    static string NewId(HashSet<string> taken)
    {
        string id;
        do id = Guid.NewGuid().ToString("N")[..8]; while (!taken.Add(id));
        return id;
    }

    /// <summary>A text field as Jupyter stores it: a string, or a list of strings to join.</summary>
    public static string ReadText(JsonNode? node) => node switch
    {
        null => "",
        JsonArray a => string.Concat(a.Select(x => (string?)x ?? "")),
        _ => (string?)node ?? "",
    };

    /// <summary>Text split the way Jupyter writes it: one string per line, each keeping its "\n".</summary>
    public static JsonArray WriteText(string text)
    {
        var arr = new JsonArray();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
            if (text[i] == '\n') { arr.Add(text[start..(i + 1)]); start = i + 1; }
        if (start < text.Length) arr.Add(text[start..]);
        return arr;
    }

    public JsonObject ToJsonObject()
    {
        var cells = new JsonArray();
        foreach (var c in Cells) cells.Add(c.ToJson());
        return new JsonObject
        {
            ["cells"] = cells,
            ["metadata"] = Metadata.DeepClone(),
            ["nbformat"] = 4,
            ["nbformat_minor"] = Math.Max(5, NbFormatMinor),
        };
    }

    static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true, IndentSize = 1, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public string ToJson() => ToJsonObject().ToJsonString(Indented) + "\n";

    public void Save(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        File.WriteAllText(path, ToJson(), new UTF8Encoding(false));
    }
}

/// <summary>One cell. <see cref="Outputs"/> holds Jupyter output objects (stream, display_data, execute_result, error).</summary>
public sealed class NotebookCell
{
    public string CellType { get; set; } = "code";
    public string Id { get; set; } = Guid.NewGuid().ToString("N")[..8];
    public string Source { get; set; } = "";
    public JsonObject Metadata { get; set; } = new();
    public JsonObject? Attachments { get; set; }
    public List<JsonObject> Outputs { get; } = new();
    public int? ExecutionCount { get; set; }

    public bool IsCode => CellType == "code";

    public JsonObject ToJson()
    {
        var o = new JsonObject { ["cell_type"] = CellType, ["id"] = Id, ["metadata"] = Metadata.DeepClone() };
        if (CellType == "code")
        {
            o["execution_count"] = ExecutionCount;
            var outs = new JsonArray();
            lock (Outputs) foreach (var x in Outputs) outs.Add(x.DeepClone());
            o["outputs"] = outs;
        }
        else if (Attachments != null && CellType is "markdown" or "raw")
        {
            o["attachments"] = Attachments.DeepClone();
        }
        o["source"] = Notebook.WriteText(Source);
        return o;
    }
}
