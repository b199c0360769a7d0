using System.Collections.Immutable;
using System.Xml.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Completion;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.FindSymbols;
using Microsoft.CodeAnalysis.Host.Mef;
using Microsoft.CodeAnalysis.Text;

namespace Lab.Cli.Engine;

/// <summary>A completion: replace code[Start..End) with <see cref="Text"/> (Jupyter's complete_reply: matches, cursor_start, cursor_end).</summary>
public sealed record Completion(string Text, string DisplayText, string Kind, int Start, int End);

/// <summary>What is under the cursor: its signature and its doc comment's summary (Jupyter's inspect_reply).</summary>
public sealed record Inspection(string Signature, string? Documentation, string Kind)
{
    /// <summary>Signature, then the summary on the next lines.</summary>
    public string Text => Documentation is { Length: > 0 } d ? $"{Signature}\n\n{d}" : Signature;
}

/// <summary>
/// Completion and inspection through Roslyn's Features (the IDE's CompletionService), over a workspace that mirrors
/// the session: each cell that ran is a submission project referencing the one before, so what cell 1 declared
/// completes in cell 5. Built lazily on the first request (Roslyn's MEF composition costs about a second).
/// </summary>
sealed class CodeIntelligence
{
    readonly NotebookEngine _engine;
    readonly SemaphoreSlim _gate = new(1, 1);
    AdhocWorkspace? _workspace;
    ProjectId? _last;
    int _cellsInWorkspace;
    IReadOnlyList<MetadataReference>? _references;

    static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest, kind: SourceCodeKind.Script);

    // "void LabResources.Track(IDisposable resource, string? what = null)": what a tooltip shows.
    static readonly SymbolDisplayFormat SignatureFormat = SymbolDisplayFormat.MinimallyQualifiedFormat
        .WithMemberOptions(SymbolDisplayMemberOptions.IncludeParameters | SymbolDisplayMemberOptions.IncludeType | SymbolDisplayMemberOptions.IncludeContainingType | SymbolDisplayMemberOptions.IncludeRef)
        .WithParameterOptions(SymbolDisplayParameterOptions.IncludeType | SymbolDisplayParameterOptions.IncludeName | SymbolDisplayParameterOptions.IncludeDefaultValue | SymbolDisplayParameterOptions.IncludeParamsRefOut | SymbolDisplayParameterOptions.IncludeExtensionThis)
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    public CodeIntelligence(NotebookEngine engine) => _engine = engine;

    public async Task<IReadOnlyList<Completion>> CompleteAsync(string code, int cursor, CancellationToken ct)
    {
        var doc = await DocumentForAsync(code, ct).ConfigureAwait(false);
        cursor = Math.Clamp(cursor, 0, code.Length);
        var service = CompletionService.GetService(doc);
        if (service == null) return Array.Empty<Completion>();
        var list = await service.GetCompletionsAsync(doc, cursor, cancellationToken: ct).ConfigureAwait(false);
        var span = list.Span;
        var typed = code.Substring(span.Start, Math.Max(0, Math.Min(cursor, code.Length) - span.Start));
        var items = list.ItemsList
            .Where(i => typed.Length == 0 || i.FilterText.StartsWith(typed, StringComparison.OrdinalIgnoreCase))
            .OrderBy(i => i.FilterText.StartsWith(typed, StringComparison.Ordinal) ? 0 : 1)
            .ThenBy(i => i.SortText, StringComparer.OrdinalIgnoreCase)
            .Select(i => new Completion(i.DisplayText, i.DisplayTextPrefix + i.DisplayText + i.DisplayTextSuffix,
                i.Tags.FirstOrDefault() ?? "", span.Start, span.End))
            .ToList();
        return items;
    }

    public async Task<Inspection?> InspectAsync(string code, int cursor, CancellationToken ct)
    {
        var doc = await DocumentForAsync(code, ct).ConfigureAwait(false);
        cursor = Math.Clamp(cursor, 0, code.Length);
        var model = await doc.GetSemanticModelAsync(ct).ConfigureAwait(false);
        if (model == null) return null;
        ISymbol? symbol = null;
        foreach (var pos in new[] { cursor, cursor - 1 })
        {
            if (pos < 0 || pos > code.Length) continue;
            symbol = await SymbolFinder.FindSymbolAtPositionAsync(model, pos, doc.Project.Solution.Workspace, ct).ConfigureAwait(false);
            if (symbol != null) break;
        }
        if (symbol == null) return null;
        var signature = symbol.ToDisplayString(SignatureFormat);
        var xml = symbol.GetDocumentationCommentXml(cancellationToken: ct);
        if (string.IsNullOrWhiteSpace(xml) && symbol.OriginalDefinition is { } def && !SymbolEqualityComparer.Default.Equals(def, symbol))
            xml = def.GetDocumentationCommentXml(cancellationToken: ct);
        return new Inspection(signature, Summary(xml), symbol.Kind.ToString());
    }

    static string? Summary(string? xml)
    {
        if (string.IsNullOrWhiteSpace(xml)) return null;
        try
        {
            var root = XElement.Parse(xml.Trim().StartsWith("<member", StringComparison.Ordinal) ? xml : $"<member>{xml}</member>");
            string Flatten(XElement? e) => e == null ? "" : string.Concat(e.Nodes().Select(n => n switch
            {
                XText t => t.Value,
                XElement { Name.LocalName: "see" or "seealso" } s => ((string?)s.Attribute("cref") ?? (string?)s.Attribute("langword") ?? s.Value).Split(':').Last(),
                XElement { Name.LocalName: "paramref" or "typeparamref" } p => (string?)p.Attribute("name") ?? "",
                XElement x => Flatten(x),
                _ => "",
            }));
            var parts = new List<string>();
            var summary = Flatten(root.Element("summary"));
            if (summary.Length > 0) parts.Add(Normalize(summary));
            foreach (var p in root.Elements("param")) parts.Add($"{(string?)p.Attribute("name")}: {Normalize(Flatten(p))}");
            if (root.Element("returns") is { } r) parts.Add("Returns: " + Normalize(Flatten(r)));
            return parts.Count == 0 ? null : string.Join("\n", parts);
        }
        catch { return xml; }
    }

    static string Normalize(string s) => string.Join(" ", s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The current cell as a document in a submission project after every cell that ran.</summary>
    async Task<Document> DocumentForAsync(string code, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var history = _engine.History;
            var refs = await Task.Run(() => References(), ct).ConfigureAwait(false);
            if (_workspace == null || !ReferenceEquals(refs, _references))
            {
                _workspace?.Dispose();
                _workspace = new AdhocWorkspace(MefHostServices.Create(MefHostServices.DefaultAssemblies));
                _last = null;
                _cellsInWorkspace = 0;
                _references = refs;
            }
            var solution = _workspace.CurrentSolution;
            for (; _cellsInWorkspace < history.Count; _cellsInWorkspace++)
            {
                (solution, _last) = AddSubmission(solution, Blank(history[_cellsInWorkspace]), _last, refs, $"cell{_cellsInWorkspace + 1}");
            }
            if (!_workspace.TryApplyChanges(solution)) throw new InvalidOperationException("workspace refused the session's cells");
            var (withCurrent, currentProject) = AddSubmission(_workspace.CurrentSolution, Blank(code), _last, refs, "current");
            return withCurrent.GetProject(currentProject)!.Documents.Single();
        }
        finally { _gate.Release(); }
    }

    (Solution, ProjectId) AddSubmission(Solution solution, string code, ProjectId? previous, IReadOnlyList<MetadataReference> refs, string name)
    {
        var pid = ProjectId.CreateNewId(name);
        var options = new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary,
            usings: _engine.Imports, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Disable);
        var doc = DocumentInfo.Create(DocumentId.CreateNewId(pid), name + ".csx", sourceCodeKind: SourceCodeKind.Script,
            loader: TextLoader.From(TextAndVersion.Create(SourceText.From(code), VersionStamp.Create())));
        var info = ProjectInfo.Create(pid, VersionStamp.Create(), name, name, LanguageNames.CSharp,
            compilationOptions: options, parseOptions: ParseOptions, documents: new[] { doc },
            projectReferences: previous != null ? new[] { new ProjectReference(previous) } : null,
            metadataReferences: refs, isSubmission: true, hostObjectType: typeof(LabGlobals));
        return (solution.AddProject(info), pid);
    }

    /// <summary>#r and #! lines blanked to spaces (offsets kept): the workspace gets the references directly.</summary>
    static string Blank(string code)
    {
        var chars = code.ToCharArray();
        int lineStart = 0;
        for (int i = 0; i <= chars.Length; i++)
        {
            if (i < chars.Length && chars[i] != '\n') continue;
            var line = code[lineStart..i].TrimStart();
            if (line.StartsWith("#!", StringComparison.Ordinal) || line.StartsWith("#r ", StringComparison.Ordinal) || line.StartsWith("#load ", StringComparison.Ordinal))
                for (int j = lineStart; j < i; j++) if (chars[j] != '\r') chars[j] = ' ';
            lineStart = i + 1;
        }
        return new string(chars);
    }

    IReadOnlyList<MetadataReference>? _cachedRefs;
    int _cachedRefCount = -1;

    /// <summary>The session's references (defaults, every #r, and what those needed), with their XML docs where a .xml sits beside the DLL (Lab.xml does).</summary>
    IReadOnlyList<MetadataReference> References()
    {
        var compilation = _engine.LastCompilation();
        var paths = new List<string> { typeof(LabGlobals).Assembly.Location };
        foreach (var asm in compilation.SourceModule.ReferencedAssemblySymbols)
            if (compilation.GetMetadataReference(asm) is PortableExecutableReference { FilePath: { } p } && !paths.Contains(p)) paths.Add(p);
        if (_cachedRefs != null && _cachedRefCount == paths.Count) return _cachedRefs;
        var byName = new Dictionary<string, MetadataReference>(StringComparer.OrdinalIgnoreCase);
        foreach (var p in paths)
        {
            var name = Path.GetFileNameWithoutExtension(p);
            if (byName.ContainsKey(name) || !File.Exists(p)) continue;
            var xml = Path.ChangeExtension(p, ".xml");
            byName[name] = File.Exists(xml)
                ? MetadataReference.CreateFromFile(p, documentation: XmlDocumentationProvider.CreateFromFile(xml))
                : MetadataReference.CreateFromFile(p);
        }
        _cachedRefs = byName.Values.ToImmutableArray();
        _cachedRefCount = paths.Count;
        return _cachedRefs;
    }
}
