#!/usr/bin/env python3
"""Validate a DCAT / HealthDCAT-AP catalogue export with pySHACL, stacking the shapes the way the
HealthData@EU validator (HealthDCAT-AP Release 8, upstream commit cd7841f) does.

usage: python validate.py EXPORT_FILE [--level non-public|public|dcat-ap|dcat-ap-shacl]
                          [--format turtle|json-ld|xml|nt|...] [--show-warnings]
                          [--strict-vocab] [--no-catalog-as-dataset] [--report-ttl PATH]

Levels
  non-public (default) / public : validator/config.properties  validator.shaclFile.<level>, in that order,
      with every owl:imports resolved to a local copy (DCAT-AP 3.0.0 html shapes, as the validator's
      owlImportMapping does) and the imported ontologies / controlled vocabularies loaded as background
      data (preloadOwlImports + merge with the submitted data, as the ITB-based validator does).
  dcat-ap        : SEMIC DCAT-AP 3.0.1 html/shacl stack (shapes, range, mdr-vocabularies,
                   shapes_recommended, deprecateduris + imports), same background.
  dcat-ap-shacl  : SEMIC DCAT-AP 3.0.1 shacl/dcat-ap-SHACL.ttl + shacl/ranges.ttl, same background.

Output: one line per Violation (focus node, path, message), NOTE lines, and as last line
  violations=N warnings=M conforms=True|False
Exit status: 0 only if there is no Violation; 1 if there are Violations; 2 on usage/parse errors.

Deviations from the hosted validator (all printed as NOTEs, see README.md):
  * path-less property shapes (sh:or without sh:path; pySHACL refuses them) are re-attached as
    node-level shapes with the same targets, severity and message;
  * results on background-only nodes (vocabulary concepts/schemes) are not counted; nested
    sh:detail results are folded into their parent (a Jena-based validator reports the parent only);
  * the controlled vocabularies are a derived stub (background/vocab-stub.ttl) plus a namespace
    fallback for the very large EU NALs (language, country, file-type, corporate-body, place, ...);
    --strict-vocab turns the fallback off.
"""
from __future__ import annotations

import os
import argparse
import hashlib
import re
import socket
import sys
import time
from pathlib import Path

import pyshacl
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, SH, SKOS

HERE = Path(__file__).resolve().parent
VAL = HERE / "validator"
# Portal copy: the DCAT-AP 3.0.1 html/shacl files sit one level up (catalogue/shapes/); the
# original layout (../shared/shapes/dcat-ap-3.0.1) is used when they are not there.
D301 = HERE.parent if (HERE.parent / "deprecateduris.ttl").is_file() else HERE.parent.parent / "shared" / "shapes" / "dcat-ap-3.0.1"
BG = HERE / "background"

EU = "http://publications.europa.eu/resource/authority/"
HD = "https://hdeu-dcat.data.health.europa.eu/resource/authority/"
DCAT300 = "https://semiceu.github.io/DCAT-AP/releases/3.0.0/html/shacl/"

# config.properties names deprecated/deprecateduris.ttl, which the GitHub mirror does not carry:
# use SEMIC's DCAT-AP deprecateduris.ttl (git blob c02a5bd, identical in releases 3.0.0 and 3.0.1).
SUBSTITUTE = {"deprecated/deprecateduris.ttl": D301 / "deprecateduris.ttl"}

# owl:imports that resolve to SHACL files (config.properties owlImportMapping 32-35 -> catalogue/*.ttl,
# files the GitHub mirror does not carry). The URIs say DCAT-AP 3.0.0. SEMIC's 3.0.0 and 3.0.1 html
# range.ttl / shapes_recommended.ttl are identical and shapes.ttl differs only in dcat:byteSize
# (3.0.0 sh:datatype xsd:decimal, 3.0.1 errata xsd:nonNegativeInteger), so the 3.0.1 files are used and
# --dcat-ap-base 3.0.0 patches that one datatype back (see patch_base()).
SHAPE_IMPORTS = {DCAT300 + n: D301 / n for n in
                 ("shapes.ttl", "range.ttl", "mdr-vocabularies.shape.ttl", "shapes_recommended.ttl")}

LEVEL_FILES = {
    "dcat-ap": [D301 / n for n in (
        "imports.ttl", "deprecateduris.ttl", "range.ttl", "shapes.ttl",
        "mdr-vocabularies.shape.ttl", "shapes_recommended.ttl")],
    "dcat-ap-shacl": [D301 / "dcat-ap-SHACL.ttl", D301 / "ranges.ttl"],
}

# Namespace fallback for vocabularies whose full concept list is not in background/vocab-stub.ttl:
# (scheme IRI, concept IRI prefix, pattern the local code must match, title)
FALLBACK = [
    (EU + "language", EU + "language/", r"^(?:[A-Z]{3}(?:_[A-Z0-9]+)*|OP_DATPRO)$", "Language"),
    (EU + "country", EU + "country/", r"^(?:[A-Z0-9]{3}(?:_[A-Z0-9]+)*|OP_DATPRO)$", "Country"),
    (EU + "file-type", EU + "file-type/", r"^[A-Z0-9][A-Z0-9_.+-]*$", "File type"),
    (EU + "corporate-body", EU + "corporate-body/", r"^[A-Z0-9][A-Z0-9_.-]*$", "Corporate body"),
    (EU + "continent", EU + "continent/", r"^[A-Z][A-Z_]*$", "Continent"),
    (EU + "place", EU + "place/", r"^[A-Z0-9][A-Z0-9_-]*$", "Place"),
    (HD + "health-activity", HD + "health-activity/", r"^[A-Z][A-Z_]*$", "Health activities"),
    ("http://purl.org/adms/publishertype/1.0", "http://purl.org/adms/publishertype/", r"^[A-Z][A-Za-z-]*$", "Publisher type"),
    ("http://purl.org/adms/licencetype/1.0", "http://purl.org/adms/licencetype/", r"^[A-Z][A-Za-z-]*$", "Licence type"),
    ("http://purl.org/adms/status/1.0", "http://purl.org/adms/status/", r"^[A-Z][A-Za-z-]*$", "Status"),
    ("http://sws.geonames.org", "http://sws.geonames.org/", r"^\d+/?$", "GeoNames"),
]

EXT_FORMAT = {".ttl": "turtle", ".turtle": "turtle", ".jsonld": "json-ld", ".json-ld": "json-ld",
              ".json": "json-ld", ".rdf": "xml", ".xml": "xml", ".owl": "xml", ".nt": "nt",
              ".n3": "n3", ".trig": "trig", ".nq": "nquads"}


def read_config(level: str):
    """validator.shaclFile.<level> list and the set of owlImportMapping URIs (background imports)."""
    props = {}
    for line in (VAL / "config.properties").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, v = line.split("=", 1)
            props[k.strip()] = v.strip()
    files = [f.strip() for f in props[f"validator.shaclFile.{level}"].split(",")]
    mapped = {v for k, v in props.items() if k.startswith("validator.owlImportMapping.") and k.endswith(".uri")}
    return files, mapped


def guess_format(path: Path) -> str:
    fmt = EXT_FORMAT.get(path.suffix.lower())
    if fmt:
        return fmt
    head = path.read_bytes()[:2048].decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if head.startswith(("{", "[")):
        return "json-ld"
    if head.startswith(("<?xml", "<rdf:RDF")):
        return "xml"
    return "turtle"


def load_shapes(level: str, base: str, notes: list[str]):
    if level in ("public", "non-public"):
        cfg_files, background_uris = read_config(level)
        files = []
        for f in cfg_files:
            p = SUBSTITUTE.get(f, VAL / f)
            if f in SUBSTITUTE:
                notes.append(f"{f} is not in the mirror; using {os.path.relpath(p, HERE)}")
            files.append(p)
    else:
        files, background_uris = list(LEVEL_FILES[level]), set()
    sg = Graph()
    seen = set()
    queue = list(files)
    loaded = []
    while queue:
        p = queue.pop(0)
        part = Graph().parse(p, format="turtle")
        sg += part
        loaded.append(str(os.path.relpath(p, HERE)))
        for imp in sorted(set(part.objects(None, OWL.imports))):
            u = str(imp)
            if u in seen:
                continue
            seen.add(u)
            if u in SHAPE_IMPORTS:
                queue.append(SHAPE_IMPORTS[u])
            elif u in background_uris or level.startswith("dcat-ap"):
                pass  # ontology / vocabulary import: satisfied by background/*.ttl (+ fallback)
            else:
                notes.append(f"owl:imports <{u}> not resolved (skipped)")
    if base == "3.0.0" and level in ("public", "non-public"):
        patch_base(sg, notes)
    return sg, loaded


def patch_base(sg: Graph, notes: list[str]):
    """DCAT-AP 3.0.0 html shapes.ttl == 3.0.1 except dcat:byteSize sh:datatype xsd:decimal (line 515)."""
    XSD = "http://www.w3.org/2001/XMLSchema#"
    n = 0
    for ps in list(sg.subjects(SH.path, URIRef("http://www.w3.org/ns/dcat#byteSize"))):
        if (ps, SH.datatype, URIRef(XSD + "nonNegativeInteger")) in sg:
            sg.remove((ps, SH.datatype, URIRef(XSD + "nonNegativeInteger")))
            sg.add((ps, SH.datatype, URIRef(XSD + "decimal")))
            n += 1
    notes.append(f"--dcat-ap-base 3.0.0: dcat:byteSize sh:datatype set to xsd:decimal on {n} property shape(s)")


def fix_pathless(sg: Graph, notes: list[str]):
    """pySHACL refuses property shapes without sh:path. Re-attach sh:or/sh:and/sh:xone/sh:not ones as
    node-level shapes on the same targets; drop bare references (none in the R8 files)."""
    target_preds = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)
    for s, o in sorted(sg.subject_objects(SH.property)):
        if (o, SH.path, None) in sg:
            continue
        sg.remove((s, SH.property, o))
        logic = {SH["or"], SH["and"], SH.xone, SH["not"]} & set(sg.predicates(o))
        if not logic:
            notes.append(f"dropped reference to undefined property shape {o} from {s}")
            continue
        digest = hashlib.sha1(f"{s}|{sorted(map(str, logic))}|{sg.value(o, SH.message)}".encode()).hexdigest()[:10]
        new = URIRef(f"urn:x-validate-py:node-constraint:{digest}")
        for p, v in list(sg.predicate_objects(o)):
            sg.add((new, p, v))
            sg.remove((o, p, v))
        sg.add((new, RDF.type, SH.NodeShape))
        for tp in target_preds:
            for t in sg.objects(s, tp):
                sg.add((new, tp, t))
        msg = sg.value(new, SH.message)
        notes.append(f"path-less property shape of <{s}> ({'/'.join(sorted(x.split('#')[-1] for x in map(str, logic)))}) "
                     f"re-attached as node shape <{new}>: {str(msg)[:90] if msg else ''}")


def background(catalog_as_dataset: bool) -> Graph:
    bg = Graph()
    bg.parse(BG / "vocab-stub.ttl", format="turtle")
    bg.parse(BG / "ontology-axioms.ttl", format="turtle")
    if catalog_as_dataset:
        bg.parse(BG / "catalog-as-dataset.ttl", format="turtle")
    return bg


def vocab_fallback(data: Graph, bg: Graph, strict: bool, notes: list[str]):
    """Add skos:inScheme for export IRIs that fall under a vocabulary not fully listed in the stub."""
    stub_schemes = set(bg.subjects(RDF.type, SKOS.ConceptScheme))
    iris = {n for t in data for n in t if isinstance(n, URIRef)}
    accepted, unlisted = [], []
    for iri in sorted(iris):
        s = str(iri)
        for scheme in stub_schemes:
            pre = str(scheme) + "/"
            if s.startswith(pre) and (iri, SKOS.inScheme, scheme) not in bg and \
                    not any(s.startswith(fp) for _, fp, _, _ in FALLBACK):
                unlisted.append(s)
        for scheme, prefix, pattern, title in FALLBACK:
            if not s.startswith(prefix) or s == scheme:
                continue
            local = s[len(prefix):]
            if (iri, SKOS.inScheme, URIRef(scheme)) in bg:
                continue
            if strict or not re.match(pattern, local):
                unlisted.append(s)
                continue
            sch = URIRef(scheme)
            bg.add((iri, RDF.type, SKOS.Concept))
            bg.add((iri, SKOS.inScheme, sch))
            bg.add((iri, SKOS.prefLabel, Literal(local, lang="en")))
            bg.add((sch, RDF.type, SKOS.ConceptScheme))
            bg.add((sch, DCTERMS.title, Literal(title, lang="en")))
            accepted.append(s)
    if accepted:
        notes.append("accepted by namespace fallback (vocabulary list not vendored): " + ", ".join(accepted))
    if unlisted:
        notes.append("NOT in the vendored vocabulary lists (membership checks will fail): " + ", ".join(sorted(set(unlisted))))


def fmt_node(n, g: Graph) -> str:
    if n is None:
        return "-"
    if isinstance(n, BNode):
        # render simple sh:alternativePath / sequence paths
        alt = g.value(n, SH.alternativePath)
        if alt is not None:
            from rdflib.collection import Collection
            return "alt(" + " | ".join(fmt_node(x, g) for x in Collection(g, alt)) + ")"
        return "_:" + str(n)[:8]
    try:
        return n.n3(g.namespace_manager)
    except Exception:
        return str(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export")
    ap.add_argument("--level", default="non-public", choices=["non-public", "public", "dcat-ap", "dcat-ap-shacl"])
    ap.add_argument("--format", default=None, help="rdflib parser name; default: guessed from extension/content")
    ap.add_argument("--show-warnings", action="store_true", help="also print Warning/Info results")
    ap.add_argument("--strict-vocab", action="store_true", help="no namespace fallback for unlisted vocabularies")
    ap.add_argument("--no-catalog-as-dataset", action="store_true",
                    help="leave out DCAT 2's dcat:Catalog rdfs:subClassOf dcat:Dataset (the hosted validator has it)")
    ap.add_argument("--dcat-ap-base", default="3.0.1", choices=["3.0.1", "3.0.0"],
                    help="content used for the DCAT-AP 3.0.0 html shapes that the HealthDCAT-AP files owl:import "
                         "(default 3.0.1 errata: byteSize xsd:nonNegativeInteger; 3.0.0: xsd:decimal)")
    ap.add_argument("--report-ttl", default=None, help="write the raw pySHACL report graph here")
    a = ap.parse_args(argv)

    socket.setdefaulttimeout(15)  # a JSON-LD remote @context must not hang the check
    notes: list[str] = []
    t0 = time.time()
    path = Path(a.export)
    if not path.is_file():
        print(f"ERROR: no such file: {path}")
        print("violations=-1 warnings=-1 conforms=False")
        return 2
    fmt = a.format or guess_format(path)
    data = Graph()
    try:
        data.parse(path, format=fmt)
    except Exception as e:  # noqa: BLE001
        print(f"ERROR: cannot parse {path} as {fmt}: {type(e).__name__}: {str(e)[:300]}")
        print("violations=-1 warnings=-1 conforms=False")
        return 2
    if fmt in ("trig", "nquads"):
        notes.append("dataset formats are flattened into one graph")

    sg, loaded = load_shapes(a.level, a.dcat_ap_base, notes)
    fix_pathless(sg, notes)
    bg = background(not a.no_catalog_as_dataset)
    vocab_fallback(data, bg, a.strict_vocab, notes)
    dcat = "http://www.w3.org/ns/dcat#"
    if not a.no_catalog_as_dataset and (None, RDF.type, URIRef(dcat + "Catalog")) in data:
        notes.append("the export has a dcat:Catalog: with DCAT 2 loaded (as in the hosted validator) it is also "
                     "validated as a dcat:Dataset; use --no-catalog-as-dataset to skip that")
    merged = Graph()
    for prefix, ns in data.namespace_manager.namespaces():
        merged.namespace_manager.bind(prefix, ns, override=False)
    merged += data
    merged += bg
    t1 = time.time()

    conforms_raw, rg, _ = pyshacl.validate(merged, shacl_graph=sg, inference="none", advanced=True,
                                           allow_warnings=True, allow_infos=True, do_owl_imports=False,
                                           meta_shacl=False)
    t2 = time.time()
    if a.report_ttl:
        rg.serialize(a.report_ttl, format="turtle")

    nested = set(rg.objects(None, SH.detail))
    export_subjects = set(data.subjects())
    bg_subjects = set(bg.subjects())
    counts = {"Violation": 0, "Warning": 0, "Info": 0}
    skipped_bg = 0
    lines = []
    for r in rg.subjects(RDF.type, SH.ValidationResult):
        if r in nested:
            continue
        focus = rg.value(r, SH.focusNode)
        if focus in bg_subjects and focus not in export_subjects:
            skipped_bg += 1
            continue
        sev = str(rg.value(r, SH.resultSeverity) or SH.Violation).split("#")[-1]
        counts[sev] = counts.get(sev, 0) + 1
        if sev == "Violation" or a.show_warnings:
            msgs = sorted({str(m) for m in rg.objects(r, SH.resultMessage)})
            path_txt = fmt_node(rg.value(r, SH.resultPath), rg)
            lines.append((sev, fmt_node(focus, merged), path_txt, " | ".join(msgs)))
    for sev, focus, p, msg in sorted(lines):
        print(f"{sev.upper()}  focus={focus}  path={p}  message={msg}")
    notes.insert(0, f"level={a.level} dcat_ap_base={a.dcat_ap_base if a.level in ('public', 'non-public') else '-'} format={fmt} export_triples={len(data)} background_triples={len(bg)} "
                    f"shape_files={len(loaded)} shapes_triples={len(sg)}")
    notes.append(f"shape files loaded (in order): {', '.join(loaded)}")
    if skipped_bg:
        notes.append(f"{skipped_bg} result(s) on background-only nodes (vocabulary schemes/concepts) not counted")
    if counts.get("Info"):
        notes.append(f"info results: {counts['Info']}")
    notes.append(f"pyshacl_raw_conforms={conforms_raw} timing: load {t1 - t0:.2f}s, validate {t2 - t1:.2f}s")
    for n in notes:
        print("NOTE: " + n)
    v, w = counts["Violation"], counts["Warning"]
    print(f"violations={v} warnings={w} conforms={v == 0}")
    return 0 if v == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
