using System.Collections.Immutable;
using System.Text;
using System.Text.RegularExpressions;
using Lab.Cli.Engine;
using Lab.Cli.Notebooks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Lab.Cli.Export;

/// <summary>What <see cref="ChapterExport.ToFileBasedApp"/> made: the program's text, and what a C# compiler said of it.</summary>
public sealed record ExportResult(string Source, IReadOnlyList<string> Errors);

/// <summary>
/// A chapter as a .NET 10 file-based app (<c>dotnet run NN-slug.cs</c>): the migration path for C# notebooks now that
/// Polyglot Notebooks is deprecated. Prose becomes comments; each code cell's code follows in order, one program,
/// so a variable from cell 1 is there in cell 3 as in a notebook session. What a notebook host did, the program does:
/// <list type="bullet">
/// <item><c>#r ".../Lab.dll"</c> becomes <c>#:project .../lib/Lab/Lab.csproj</c> (a file-based app references projects
/// and packages, not DLLs), <c>#r "nuget: X, 1.0"</c> becomes <c>#:package X@1.0</c>;</item>
/// <item>the kernel's six implicit usings are written out (the app's own implicit usings are turned off, so names mean
/// what they mean in the notebook), and every cell's <c>using</c>s move to the top, its type declarations to the end
/// (C# wants top-level statements first);</item>
/// <item>a cell's last expression, which a notebook shows, is passed to <c>display(...)</c>, printed by
/// <see cref="Lab.Display.Terminal"/> (a check shows as "✓ claim"); a void one stays a statement.</item>
/// </list>
/// </summary>
public static partial class ChapterExport
{
    static readonly CSharpParseOptions ScriptParse = new(LanguageVersion.Latest, kind: SourceCodeKind.Script);
    const string Probe = "__LabExportShow";

    /// <param name="notebook">The chapter (its source: outputs are not exported).</param>
    /// <param name="outputPath">Where the .cs file will be written: #:project paths are relative to it.</param>
    /// <param name="labProject">lib/Lab/Lab.csproj of this checkout.</param>
    public static ExportResult ToFileBasedApp(Notebook notebook, string outputPath, string labProject)
    {
        var name = Path.GetFileNameWithoutExtension(notebook.Path ?? outputPath);
        var outDir = Path.GetDirectoryName(Path.GetFullPath(outputPath))!;
        var directives = new List<string>();
        var usings = new List<string>();
        var types = new List<string>();
        var body = new List<Piece>();
        int codeCell = 0;
        foreach (var cell in notebook.Cells)
        {
            if (cell.CellType == "markdown" || cell.IsCode && cell.Source.TrimStart().StartsWith("#!markdown", StringComparison.Ordinal))
            {
                body.Add(new Piece(Comment(cell.Source.TrimStart().StartsWith("#!markdown", StringComparison.Ordinal) ? cell.Source.TrimStart()["#!markdown".Length..] : cell.Source), null));
                continue;
            }
            if (!cell.IsCode || string.IsNullOrWhiteSpace(cell.Source)) continue;
            codeCell++;
            var code = HostLines(cell.Source, directives, labProject, outDir);
            var unit = (CompilationUnitSyntax)CSharpSyntaxTree.ParseText(code, ScriptParse).GetRoot();
            foreach (var u in unit.Usings) usings.Add(u.ToString().Trim());
            // In a script a cell's `var x = 1;` is a field and `void F() {}` a method; in a program both are top-level
            // statements, in the same order. Only type declarations must move.
            var members = unit.Members.Where(m => m is not (BaseTypeDeclarationSyntax or DelegateDeclarationSyntax or BaseNamespaceDeclarationSyntax)).ToList();
            foreach (var m in unit.Members.Except(members))
                types.Add($"// from cell {codeCell}\n{m.ToFullString().Trim()}");
            body.Add(new Piece($"Cell({codeCell});", null));
            if (members.Count == 0) continue;
            var last = members[^1];
            if (last is GlobalStatementSyntax { Statement: ExpressionStatementSyntax { SemicolonToken.IsMissing: true } value })
            {
                // The cell's value, shown by the notebook: everything before it, then the expression itself.
                var before = string.Concat(members.Take(members.Count - 1).Select(m => m.ToFullString())) + last.GetLeadingTrivia().ToFullString();
                if (before.Trim().Length > 0) body.Add(new Piece(before.Trim('\n', '\r'), null));
                var trailing = last.GetTrailingTrivia().ToFullString().Trim();
                body.Add(new Piece(null, value.Expression.ToString(), trailing.Length > 0 ? " " + trailing : ""));
            }
            else body.Add(new Piece(string.Concat(members.Select(m => m.ToFullString())).Trim('\n', '\r'), null));
        }

        string Render(IReadOnlyList<bool>? isVoid)
        {
            var sb = new StringBuilder();
            sb.Append("// ").Append(notebook.Title ?? name).Append('\n');
            sb.Append("// Exported by `lab export` from notebooks/").Append(Path.GetFileName(notebook.Path ?? name + ".ipynb"))
              .Append(" as a .NET 10 file-based app. Run it (as root, like the notebook) with:\n//     dotnet run ")
              .Append(Path.GetFileName(outputPath)).Append('\n');
            sb.Append("// The chapter's prose is in the comments; each `Cell(N)` starts the notebook's code cell N; a cell's value is printed\n")
              .Append("// by display(...), a chart is written to an HTML page whose path is printed.\n");
            foreach (var d in directives.Distinct()) sb.Append(d).Append('\n');
            // As a notebook's kernel compiles cells: no implicit usings beyond the kernel's six, no nullable analysis,
            // warnings as warnings. Inside this repository (Directory.Build.props) the build goes to
            // artifacts/bin/NN-slug.cs/debug/, beside Lab's and Lab.Cli's, where a cell that finds the lab's files from
            // Lab.dll's folder (chapter 00 runs `lab doctor` so) expects it.
            // CA1416: Lab.dll is marked Linux only, and outside this repository nothing marks the program so.
            sb.Append("#:property ImplicitUsings=disable\n#:property Nullable=disable\n#:property PublishAot=false\n#:property TreatWarningsAsErrors=false\n")
              .Append("#:property NoWarn=$(NoWarn);CA1416\n")
              .Append("#:property IncludeProjectNameInArtifactsPaths=true\n\n");
            sb.Append("// The implicit usings of a notebook's C# kernel, then the chapter's own.\n");
            foreach (var u in NotebookEngine.DefaultImports) sb.Append("using ").Append(u).Append(";\n");
            foreach (var u in usings.Distinct()) sb.Append(u).Append('\n');
            sb.Append("using static Lab.Display.Terminal;\n\n");
            sb.Append("Lab.Display.Terminal.Start(\"").Append(name).Append("\", System.IO.Path.Combine((string)AppContext.GetData(\"EntryPointFileDirectoryPath\") ?? \".\", \"")
              .Append(name).Append("-charts\"));\n\n");
            int probe = 0;
            foreach (var p in body)
            {
                if (p.Value is { } expr)
                {
                    var shown = isVoid == null ? $"{Probe}({expr});" : isVoid[probe] ? $"{expr};" : $"display({expr});";
                    probe++;
                    sb.Append(shown).Append(p.Trailing).Append('\n');
                }
                else
                {
                    if (p.Text!.StartsWith("Cell(", StringComparison.Ordinal) && !sb.ToString().EndsWith("\n\n", StringComparison.Ordinal)) sb.Append('\n');
                    sb.Append(p.Text).Append('\n');
                }
                if (p.Text != null && p.Text.StartsWith("//", StringComparison.Ordinal)) sb.Append('\n');
            }
            if (types.Count > 0)
            {
                sb.Append("\n// Types the cells declared (C# wants them after the top-level statements).\n");
                foreach (var t in types) sb.Append(t).Append("\n\n");
            }
            return sb.ToString();
        }

        var references = References();
        // First pass: each cell value through an undefined method, to learn which are void (a void call ends a cell
        // without a value; display(void) would not compile).
        var probeTree = CSharpSyntaxTree.ParseText(WithoutFileDirectives(Render(null)), new CSharpParseOptions(LanguageVersion.Latest));
        var probeCompilation = Compile(probeTree, references);
        var model = probeCompilation.GetSemanticModel(probeTree);
        var voids = probeTree.GetRoot().DescendantNodes().OfType<InvocationExpressionSyntax>()
            .Where(i => i.Expression is IdentifierNameSyntax { Identifier.ValueText: Probe })
            .Select(i => model.GetTypeInfo(i.ArgumentList.Arguments[0].Expression).Type is { SpecialType: SpecialType.System_Void })
            .ToList();
        var source = Render(voids);
        var tree = CSharpSyntaxTree.ParseText(WithoutFileDirectives(source), new CSharpParseOptions(LanguageVersion.Latest));
        var errors = Compile(tree, references).GetDiagnostics()
            .Where(d => d.Severity == DiagnosticSeverity.Error)
            .Select(d => $"{Path.GetFileName(outputPath)}({d.Location.GetLineSpan().StartLinePosition.Line + 1}): {d.Id} {d.GetMessage()}")
            .ToList();
        return new ExportResult(source, errors);
    }

    sealed record Piece(string? Text, string? Value, string Trailing = "");

    static CSharpCompilation Compile(SyntaxTree tree, IEnumerable<MetadataReference> references) =>
        CSharpCompilation.Create("export", new[] { tree }, references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Disable));

    /// <summary>The framework and Lab.dll with the DLLs beside it: what the exported app builds against.</summary>
    static ImmutableArray<MetadataReference> References() => Highlight.CSharpHighlighter.References(Directory.GetFiles(Lab.LabInfo.Folder, "*.dll"));

    /// <summary>The #: lines blanked (the compiler here does not know them; line numbers stay).</summary>
    static string WithoutFileDirectives(string source) =>
        string.Join('\n', source.Split('\n').Select(l => l.StartsWith("#:", StringComparison.Ordinal) ? "" : l));

    [GeneratedRegex(@"^\s*#r\s+""nuget:\s*([^,""\s]+)\s*(?:,\s*([^""\s]+))?\s*""\s*$")]
    private static partial Regex NugetReference();

    [GeneratedRegex(@"^\s*#r\s+""([^""]+)""\s*$")]
    private static partial Regex PathReference();

    /// <summary>
    /// A cell's host lines (#r, #!) turned into file-level directives or comments; other lines kept, so line and
    /// column positions in the cell's code stay as the reader wrote them.
    /// </summary>
    static string HostLines(string code, List<string> directives, string labProject, string outDir)
    {
        var lines = code.Replace("\r\n", "\n").Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var t = lines[i].Trim();
            if (t.StartsWith("#!", StringComparison.Ordinal)) { lines[i] = ""; continue; }
            if (NugetReference().Match(t) is { Success: true } nuget)
            {
                directives.Add(nuget.Groups[2].Success ? $"#:package {nuget.Groups[1].Value}@{nuget.Groups[2].Value}" : $"#:package {nuget.Groups[1].Value}@*");
                lines[i] = "";
            }
            else if (PathReference().Match(t) is { Success: true } reference)
            {
                if (Path.GetFileName(reference.Groups[1].Value).Equals("Lab.dll", StringComparison.OrdinalIgnoreCase))
                {
                    // Relative inside the checkout (the file moves with it), absolute from anywhere else.
                    var repo = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(labProject)!, "..", ".."));
                    var inside = (outDir + "/").StartsWith(repo.TrimEnd('/') + "/", StringComparison.Ordinal);
                    directives.Add("#:project " + (inside ? Path.GetRelativePath(outDir, labProject) : Path.GetFullPath(labProject)));
                }
                else
                    directives.Add($"// {t}: a file-based app cannot reference a DLL by path; reference its project (#:project) or package (#:package)");
                lines[i] = "";
            }
            else if (t.StartsWith("#load ", StringComparison.Ordinal))
            {
                directives.Add($"// {t}: not supported in a file-based app; paste that script's code here");
                lines[i] = "";
            }
        }
        return string.Join('\n', lines);
    }

    static string Comment(string markdown) =>
        string.Join('\n', markdown.Replace("\r\n", "\n").Trim('\n').Split('\n').Select(l => l.Length == 0 ? "//" : "// " + l));
}
