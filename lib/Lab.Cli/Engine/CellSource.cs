using System.Text.RegularExpressions;

namespace Lab.Cli.Engine;

/// <summary>
/// A cell's text made ready for Roslyn. Polyglot's magic lines are handled here: <c>#!csharp</c> / <c>#!c#</c> are
/// blanked (line numbers stay the reader's), a cell opening with <c>#!markdown</c> is prose, and another language's
/// magic is an error that says so. Lines keep their numbers, so diagnostics point at the cell as written.
/// </summary>
public sealed partial record CellSource(string Code, bool IsMarkdown, string? Error)
{
    static readonly string[] CSharpMagics = { "#!csharp", "#!c#", "#!C#", "#!cs" };
    static readonly string[] Ignored = { "#!time" };

    [GeneratedRegex(@"^\s*#r\s+""nuget:", RegexOptions.Multiline)]
    private static partial Regex NuGetReference();

    public static CellSource Parse(string text)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        var first = lines.FirstOrDefault(l => l.Trim().Length > 0)?.Trim() ?? "";
        if (first.StartsWith("#!markdown", StringComparison.Ordinal) || first == "#!md")
            return new CellSource("", true, null);
        for (int i = 0; i < lines.Length; i++)
        {
            var t = lines[i].Trim();
            if (!t.StartsWith("#!", StringComparison.Ordinal)) continue;
            var magic = t.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries)[0];
            if (CSharpMagics.Contains(magic) || Ignored.Contains(magic)) { lines[i] = ""; continue; }
            return new CellSource("", false, $"line {i + 1}: {magic}: this engine runs C# cells only (Polyglot's other kernels and magic commands are not available)");
        }
        var code = string.Join("\n", lines);
        var m = NuGetReference().Match(code);
        if (m.Success)
        {
            var line = code[..m.Index].Count(c => c == '\n') + 1;
            return new CellSource(code, false, $"line {line}: #r \"nuget:...\" is not supported by the lab's engine: reference a DLL by path (the lab's library: #r \"../artifacts/bin/Lab/debug/Lab.dll\")");
        }
        return new CellSource(code, false, null);
    }
}
