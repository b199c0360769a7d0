using System.Collections.Immutable;
using System.Net;
using System.Text;
using Lab.Cli.Engine;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Classification;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Host.Mef;
using Microsoft.CodeAnalysis.Text;

namespace Lab.Cli.Highlight;

/// <summary>What a run of characters is, as the book's CSS and the REPL's ANSI colours tell them apart.</summary>
public enum TokenKind { Plain, Keyword, Control, String, Number, Comment, Type, Method, Member, Preprocessor }

/// <summary>A run of <paramref name="Length"/> characters from <paramref name="Start"/>, all of one kind.</summary>
public readonly record struct Token(int Start, int Length, TokenKind Kind);

/// <summary>
/// C# colouring with Roslyn's own classifier (<see cref="Classifier"/>, the one Visual Studio colours with), over a
/// script document that sees Lab.dll, the framework and the cell globals (<c>display</c>, <c>HTML</c>), so
/// <c>Listener</c> colours as a type and <c>Open</c> as a method. The book colours its code cells with it at build
/// time (<see cref="ToHtml"/>: spans with classes, no script); <c>lab repl</c> colours the line being typed with it
/// (<see cref="ToAnsi"/>). One instance is not thread-safe; classification is serialized inside.
/// </summary>
public sealed class CSharpHighlighter : IDisposable
{
    static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest, kind: SourceCodeKind.Script);

    readonly object _gate = new();
    readonly AdhocWorkspace _workspace;
    readonly ProjectId _project;
    readonly DocumentId _document;
    readonly CSharpCompilationOptions _options;

    public CSharpHighlighter(IEnumerable<string>? references = null)
    {
        _workspace = new AdhocWorkspace(MefHostServices.Create(MefHostServices.DefaultAssemblies));
        _project = ProjectId.CreateNewId("highlight");
        _document = DocumentId.CreateNewId(_project);
        _options = new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, usings: NotebookEngine.DefaultImports,
            allowUnsafe: true, nullableContextOptions: NullableContextOptions.Disable);
        var info = ProjectInfo.Create(_project, VersionStamp.Create(), "highlight", "highlight", LanguageNames.CSharp,
            compilationOptions: _options, parseOptions: ParseOptions,
            documents: new[] { DocumentInfo.Create(_document, "cell.csx", sourceCodeKind: SourceCodeKind.Script,
                loader: TextLoader.From(TextAndVersion.Create(SourceText.From(""), VersionStamp.Create()))) },
            metadataReferences: References(references), isSubmission: true, hostObjectType: typeof(LabGlobals));
        _workspace.AddProject(info);
    }

    /// <summary>The framework's assemblies, Lab.dll, Lab.Cli.dll and any <paramref name="extra"/> (one per assembly name, the first found).</summary>
    internal static ImmutableArray<MetadataReference> References(IEnumerable<string>? extra)
    {
        var paths = new List<string>();
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string tpa)
            paths.AddRange(tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        paths.Add(typeof(Lab.LabInfo).Assembly.Location);
        paths.Add(typeof(LabGlobals).Assembly.Location);
        if (extra != null) paths.AddRange(extra);
        var byName = new Dictionary<string, MetadataReference>(StringComparer.OrdinalIgnoreCase);
        foreach (var p in paths)
        {
            var name = Path.GetFileNameWithoutExtension(p);
            if (p.Length == 0 || byName.ContainsKey(name) || !File.Exists(p)) continue;
            try { byName[name] = MetadataReference.CreateFromFile(p); }
            catch (Exception e) when (e is IOException or BadImageFormatException) { }
        }
        return byName.Values.ToImmutableArray();
    }

    /// <summary>
    /// Classifies <paramref name="code"/> (a cell, or the REPL's submission so far) with <paramref name="usings"/>
    /// imported beside the notebook defaults (what earlier cells' <c>using</c>s brought). <c>#r</c> and <c>#!</c>
    /// lines are directives to the host: they colour as preprocessor lines. Tokens cover the text without gaps.
    /// </summary>
    public IReadOnlyList<Token> Classify(string code, IEnumerable<string>? usings = null, CancellationToken ct = default)
    {
        IEnumerable<ClassifiedSpan> spans;
        lock (_gate)
        {
            var options = _options.WithUsings(NotebookEngine.DefaultImports.Concat(usings ?? Array.Empty<string>()).Distinct());
            var solution = _workspace.CurrentSolution
                .WithProjectCompilationOptions(_project, options)
                .WithDocumentText(_document, SourceText.From(HostLinesBlanked(code)));
            var doc = solution.GetDocument(_document)!;
            try
            {
                spans = Classifier.GetClassifiedSpansAsync(doc, new TextSpan(0, code.Length), ct).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is not OperationCanceledException) { spans = Array.Empty<ClassifiedSpan>(); }
        }
        var kinds = new TokenKind[code.Length];
        // Roslyn gives syntactic spans first, then semantic ones over the same identifiers ("identifier", then "class
        // name"), and additive ones ("static symbol") that say nothing of colour: the last span with a colour wins.
        foreach (var s in spans)
        {
            if (Kind(s.ClassificationType) is not { } kind) continue;
            for (int i = s.TextSpan.Start; i < s.TextSpan.End && i < kinds.Length; i++) kinds[i] = kind;
        }
        MarkHostLines(code, kinds);
        var tokens = new List<Token>();
        for (int i = 0; i < kinds.Length;)
        {
            int j = i + 1;
            while (j < kinds.Length && kinds[j] == kinds[i]) j++;
            tokens.Add(new Token(i, j - i, kinds[i]));
            i = j;
        }
        return tokens;
    }

    /// <summary>The namespaces <paramref name="code"/>'s using directives import (a set-up cell's), for the cells after it.</summary>
    public static IEnumerable<string> UsingsIn(string code) =>
        CSharpSyntaxTree.ParseText(HostLinesBlanked(code), ParseOptions).GetRoot() is Microsoft.CodeAnalysis.CSharp.Syntax.CompilationUnitSyntax unit
            ? unit.Usings.Where(u => u.StaticKeyword.IsKind(SyntaxKind.None) && u.Alias == null && u.Name != null).Select(u => u.Name!.ToString())
            : Enumerable.Empty<string>();

    static TokenKind? Kind(string type) => type switch
    {
        ClassificationTypeNames.Keyword => TokenKind.Keyword,
        ClassificationTypeNames.ControlKeyword => TokenKind.Control,
        ClassificationTypeNames.StringLiteral or ClassificationTypeNames.VerbatimStringLiteral
            or ClassificationTypeNames.StringEscapeCharacter => TokenKind.String,
        ClassificationTypeNames.NumericLiteral => TokenKind.Number,
        ClassificationTypeNames.Comment => TokenKind.Comment,
        ClassificationTypeNames.ClassName or ClassificationTypeNames.RecordClassName or ClassificationTypeNames.StructName
            or ClassificationTypeNames.RecordStructName or ClassificationTypeNames.InterfaceName or ClassificationTypeNames.EnumName
            or ClassificationTypeNames.DelegateName or ClassificationTypeNames.TypeParameterName => TokenKind.Type,
        ClassificationTypeNames.MethodName or ClassificationTypeNames.ExtensionMethodName => TokenKind.Method,
        // A cell's variables are fields of the script class: "field name" would colour a declaration but not its uses
        // in later cells (which this document does not see), so fields stay plain like locals.
        ClassificationTypeNames.PropertyName or ClassificationTypeNames.EventName
            or ClassificationTypeNames.EnumMemberName or ClassificationTypeNames.ConstantName => TokenKind.Member,
        ClassificationTypeNames.PreprocessorKeyword or ClassificationTypeNames.PreprocessorText => TokenKind.Preprocessor,
        ClassificationTypeNames.Identifier or ClassificationTypeNames.LocalName or ClassificationTypeNames.FieldName or ClassificationTypeNames.ParameterName
            or ClassificationTypeNames.NamespaceName or ClassificationTypeNames.Operator or ClassificationTypeNames.Punctuation
            or ClassificationTypeNames.OperatorOverloaded or ClassificationTypeNames.Text => TokenKind.Plain,
        _ when type.StartsWith("xml doc comment", StringComparison.Ordinal) => TokenKind.Comment,
        _ => null, // additive ("static symbol") or embedded-language detail: keep the colour under it
    };

    static bool IsHostLine(ReadOnlySpan<char> line)
    {
        var t = line.TrimStart();
        return t.StartsWith("#!") || t.StartsWith("#r ") || t.StartsWith("#load ") || t.StartsWith("#i ");
    }

    /// <summary>#r, #load and #! lines blanked (offsets kept): they are the host's, and would confuse the parse.</summary>
    static string HostLinesBlanked(string code)
    {
        var chars = code.ToCharArray();
        ForEachHostLine(code, (s, e) => { for (int j = s; j < e; j++) if (chars[j] != '\r') chars[j] = ' '; });
        return new string(chars);
    }

    static void MarkHostLines(string code, TokenKind[] kinds) =>
        ForEachHostLine(code, (s, e) => { for (int j = s; j < e; j++) kinds[j] = TokenKind.Preprocessor; });

    static void ForEachHostLine(string code, Action<int, int> action)
    {
        int lineStart = 0;
        for (int i = 0; i <= code.Length; i++)
        {
            if (i < code.Length && code[i] != '\n') continue;
            if (IsHostLine(code.AsSpan(lineStart, i - lineStart))) action(lineStart, i);
            lineStart = i + 1;
        }
    }

    /// <summary>The CSS class of a kind in the book (<c>hl-kw</c>, ...); null for plain text.</summary>
    public static string? CssClass(TokenKind kind) => kind switch
    {
        TokenKind.Keyword => "hl-kw",
        TokenKind.Control => "hl-ctl",
        TokenKind.String => "hl-str",
        TokenKind.Number => "hl-num",
        TokenKind.Comment => "hl-com",
        TokenKind.Type => "hl-type",
        TokenKind.Method => "hl-fn",
        TokenKind.Member => "hl-mem",
        TokenKind.Preprocessor => "hl-pp",
        _ => null,
    };

    /// <summary>The book's colours for <see cref="CssClass"/>, light background (close to GitHub's and VS Code's light themes).</summary>
    public const string Css = """
        .hl-kw { color: #0033b3; } .hl-ctl { color: #8e24aa; } .hl-str { color: #a31515; } .hl-num { color: #098658; }
        .hl-com { color: #6a737d; font-style: italic; } .hl-type { color: #1b7d8a; } .hl-fn { color: #795e26; }
        .hl-mem { color: #264f78; } .hl-pp { color: #7a7a7a; }
        """;

    /// <summary>The ANSI SGR colour of a kind in the REPL (the same kinds as the book's classes); null for plain text.</summary>
    public static string? AnsiColour(TokenKind kind) => kind switch
    {
        TokenKind.Keyword => "\x1b[34m",        // blue
        TokenKind.Control => "\x1b[35m",        // magenta
        TokenKind.String => "\x1b[31m",         // red
        TokenKind.Number => "\x1b[32m",         // green
        TokenKind.Comment => "\x1b[90m",        // grey
        TokenKind.Type => "\x1b[36m",           // cyan
        TokenKind.Method => "\x1b[33m",         // yellow
        TokenKind.Member => null,               // plain: properties are most of a line's words
        TokenKind.Preprocessor => "\x1b[90m",
        _ => null,
    };

    /// <summary><paramref name="code"/> as HTML-encoded text with a span per coloured token (goes inside &lt;code&gt;).</summary>
    public string ToHtml(string code, IEnumerable<string>? usings = null) => Html(code, Classify(code, usings));

    /// <summary>HTML for <paramref name="code"/> coloured by <paramref name="tokens"/>.</summary>
    public static string Html(string code, IReadOnlyList<Token> tokens)
    {
        var sb = new StringBuilder(code.Length * 2);
        foreach (var t in tokens)
        {
            var text = WebUtility.HtmlEncode(code.Substring(t.Start, t.Length));
            if (CssClass(t.Kind) is { } css) sb.Append("<span class=\"").Append(css).Append("\">").Append(text).Append("</span>");
            else sb.Append(text);
        }
        return sb.ToString();
    }

    /// <summary>
    /// <paramref name="code"/>[<paramref name="from"/>..] with ANSI colours from <paramref name="tokens"/> (classified over
    /// the whole of <paramref name="code"/>, so a string or comment opened on an earlier line colours this one right).
    /// </summary>
    public static string Ansi(string code, IReadOnlyList<Token> tokens, int from = 0)
    {
        var sb = new StringBuilder();
        foreach (var t in tokens)
        {
            var start = Math.Max(t.Start, from);
            var end = t.Start + t.Length;
            if (end <= start) continue;
            var text = code[start..end];
            if (AnsiColour(t.Kind) is { } c) sb.Append(c).Append(text).Append("\x1b[0m");
            else sb.Append(text);
        }
        return sb.ToString();
    }

    /// <summary><paramref name="code"/> with ANSI colours (what the REPL draws).</summary>
    public string ToAnsi(string code, IEnumerable<string>? usings = null) => Ansi(code, Classify(code, usings));

    public void Dispose() => _workspace.Dispose();
}
