using System.Text.Json.Nodes;
using Lab.Cli.Jupyter;

namespace Lab.Cli.Notebooks;

/// <summary>
/// The metadata every chapter carries (notebooks/CONVENTIONS.md), so each host opens it with the right kernel:
/// Jupyter front ends pick the lab's kernel from <c>kernelspec</c>, and Polyglot Notebooks (where a reader still
/// has it) runs the code cells as C# from the <c>polyglot_notebook</c> / <c>dotnet_interactive</c> entries.
/// </summary>
public static class NotebookMetadata
{
    /// <summary>Notebook level: kernelspec, language_info, polyglot_notebook.</summary>
    public static JsonObject Notebook() => new()
    {
        ["kernelspec"] = new JsonObject { ["name"] = KernelSpec.Name, ["display_name"] = KernelSpec.DisplayName, ["language"] = KernelSpec.Language },
        ["language_info"] = new JsonObject
        {
            ["name"] = "C#", ["file_extension"] = ".cs", ["mimetype"] = "text/x-csharp", ["pygments_lexer"] = "csharp",
        },
        ["polyglot_notebook"] = new JsonObject
        {
            ["kernelInfo"] = new JsonObject
            {
                ["defaultKernelName"] = "csharp",
                ["items"] = new JsonArray(new JsonObject { ["name"] = "csharp", ["aliases"] = new JsonArray() }),
            },
        },
    };

    /// <summary>Every code cell.</summary>
    public static JsonObject CodeCell() => new()
    {
        ["dotnet_interactive"] = new JsonObject { ["language"] = "csharp" },
        ["polyglot_notebook"] = new JsonObject { ["kernelName"] = "csharp" },
    };

    /// <summary>Adds what is missing (existing other keys stay). Returns the notebook.</summary>
    public static Notebook Apply(Notebook nb)
    {
        foreach (var (k, v) in Notebook()) nb.Metadata[k] = v!.DeepClone();
        foreach (var c in nb.Cells.Where(c => c.IsCode))
            foreach (var (k, v) in CodeCell()) c.Metadata[k] = v!.DeepClone();
        return nb;
    }

    /// <summary>What a notebook lacks, one line each ("cell 3 (id abc): metadata.polyglot_notebook.kernelName is not \"csharp\""); empty when it is right.</summary>
    public static IReadOnlyList<string> Problems(Notebook nb)
    {
        var problems = new List<string>();
        Expect(problems, "metadata", nb.Metadata, "kernelspec.name", KernelSpec.Name);
        Expect(problems, "metadata", nb.Metadata, "kernelspec.display_name", KernelSpec.DisplayName);
        Expect(problems, "metadata", nb.Metadata, "kernelspec.language", KernelSpec.Language);
        Expect(problems, "metadata", nb.Metadata, "language_info.name", "C#");
        Expect(problems, "metadata", nb.Metadata, "polyglot_notebook.kernelInfo.defaultKernelName", "csharp");
        var items = At(nb.Metadata, "polyglot_notebook.kernelInfo.items") as JsonArray;
        if (items == null || !items.Any(i => (string?)i?["name"] == "csharp"))
            problems.Add("metadata.polyglot_notebook.kernelInfo.items has no {\"name\": \"csharp\"}");
        int n = 0;
        foreach (var c in nb.Cells)
        {
            n++;
            if (!c.IsCode) continue;
            var where = $"cell {n} (id {c.Id}): metadata";
            Expect(problems, where, c.Metadata, "dotnet_interactive.language", "csharp");
            Expect(problems, where, c.Metadata, "polyglot_notebook.kernelName", "csharp");
        }
        return problems;
    }

    static JsonNode? At(JsonObject o, string path)
    {
        JsonNode? node = o;
        foreach (var part in path.Split('.')) node = node is JsonObject obj ? obj[part] : null;
        return node;
    }

    static void Expect(List<string> problems, string where, JsonObject o, string path, string expected)
    {
        var actual = At(o, path) is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        if (actual != expected)
            problems.Add(actual == null ? $"{where}.{path} is missing (expected \"{expected}\")" : $"{where}.{path} is \"{actual}\", expected \"{expected}\"");
    }
}
