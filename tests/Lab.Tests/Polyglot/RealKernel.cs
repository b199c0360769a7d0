using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Lab.Tests.Polyglot;

/// <summary>
/// The real .NET Interactive kernel (the one Polyglot Notebooks runs), installed by scripts/prereqs as the dotnet
/// tools dotnet-repl 0.3.259 and Microsoft.dotnet-interactive 1.0.712001: notebooks run through it headless.
/// </summary>
public static class RealKernel
{
    public static string Tools => Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".dotnet", "tools");
    public static string Repl => Path.Combine(Tools, "dotnet-repl");
    public static string Interactive => Path.Combine(Tools, "dotnet-interactive");
    public static bool Installed => File.Exists(Repl) && File.Exists(Interactive);
    public const string Missing = "the .NET Interactive tools are not installed (bash scripts/prereqs installs them)";

    static string LabDll => Path.Combine(RepoRoot.Path, "artifacts", "bin", "Lab", "debug", "Lab.dll");

    /// <summary>A notebook of C# cells with Polyglot's metadata; the first cell references the built Lab.dll.</summary>
    public static string Notebook(string folder, string name, params string[] cells)
    {
        var meta = new JsonObject { ["dotnet_interactive"] = new JsonObject { ["language"] = "csharp" }, ["polyglot_notebook"] = new JsonObject { ["kernelName"] = "csharp" } };
        var all = new[] { $"#r \"{LabDll}\"" }.Concat(cells);
        var nb = new JsonObject
        {
            ["nbformat"] = 4, ["nbformat_minor"] = 5,
            ["metadata"] = new JsonObject
            {
                ["kernelspec"] = new JsonObject { ["name"] = ".net-csharp", ["display_name"] = ".NET (C#)", ["language"] = "C#" },
                ["language_info"] = new JsonObject { ["name"] = "C#" },
                ["polyglot_notebook"] = new JsonObject { ["kernelInfo"] = new JsonObject { ["defaultKernelName"] = "csharp", ["items"] = new JsonArray(new JsonObject { ["name"] = "csharp", ["aliases"] = new JsonArray() }) } },
            },
            ["cells"] = new JsonArray(all.Select((c, i) => (JsonNode)new JsonObject
            {
                ["cell_type"] = "code", ["id"] = $"c{i}", ["execution_count"] = null, ["metadata"] = meta.DeepClone(),
                ["outputs"] = new JsonArray(), ["source"] = c,
            }).ToArray()),
        };
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, nb.ToJsonString());
        return path;
    }

    /// <summary>Runs <paramref name="notebook"/> through dotnet-repl and returns each code cell's outputs.</summary>
    public static async Task<List<JsonArray>> Run(string notebook, TimeSpan? timeout = null)
    {
        var dir = Path.GetDirectoryName(notebook)!;
        var output = Path.Combine(dir, "out-" + Path.GetFileName(notebook));
        var psi = new ProcessStartInfo(Repl) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, WorkingDirectory = dir };
        foreach (var a in new[] { "--run", Path.GetFileName(notebook), "--exit-after-run", "--output-format", "ipynb", "--output-path", output, "--working-dir", "." })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var limit = timeout ?? TimeSpan.FromSeconds(180);
        try { await p.WaitForExitAsync().WaitAsync(limit); }
        catch (TimeoutException) { p.Kill(entireProcessTree: true); throw new TimeoutException($"dotnet-repl did not finish {notebook} within {limit.TotalSeconds} s"); }
        Assert.True(File.Exists(output), $"dotnet-repl wrote no {output} (exit {p.ExitCode})\n{await stdout}\n{await stderr}");
        var nb = JsonNode.Parse(File.ReadAllText(output))!;
        return nb["cells"]!.AsArray().Where(c => (string?)c!["cell_type"] == "code").Select(c => c!["outputs"]!.AsArray()).ToList();
    }

    /// <summary>Writes <paramref name="cells"/> as a notebook called <paramref name="name"/> in a temp folder, runs it, and returns each code cell's outputs.</summary>
    public static async Task<List<JsonArray>> RunCells(string name, params string[] cells)
    {
        var dir = Directory.CreateTempSubdirectory("lab-polyglot-").FullName;
        try { return await Run(Notebook(dir, name, cells)); }
        finally { Directory.Delete(dir, true); }
    }

    // An outputs array's items are JsonNode? (JSON allows null there); a null output has no text, like one without the MIME type.
    public static string Html(JsonNode? output) => Text(output?["data"]?["text/html"]);
    public static string Plain(JsonNode? output) => Text(output?["data"]?["text/plain"]) + Text(output?["text"]);
    static string Text(JsonNode? n) => n is JsonArray a ? string.Concat(a.Select(x => (string?)x)) : (string?)n ?? "";
    public static IEnumerable<JsonNode> Errors(IEnumerable<JsonArray> cells) => cells.SelectMany(c => c).Where(o => (string?)o!["output_type"] == "error")!;
}
