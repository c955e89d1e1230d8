"""Uploads each class of hostile input to a release `rfm-agent serve` with default settings
and prints what the service answered, the service's peak resident memory (VmHWM, reset
before each case through /proc/PID/clear_refs) and the peak of the run's own process (runs
compute in processes of their own; each records its peak as `peak_mib`). Inputs are built
in a temporary folder.
"""
import gzip, io, json, os, subprocess, sys, tempfile, time, urllib.request, uuid, zipfile

BIN = sys.argv[1]
TOKEN = "bench-hostile-token-0123456789abcdef"
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"

def xlsx(path, sheet_rows, extra=(), dimension="", writer=None):
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook {ns} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0"?><worksheet {ns}>{dimension}<sheetData>'.encode())
            for chunk in sheet_rows():
                f.write(chunk.encode())
            f.write(b"</sheetData></worksheet>")
        for name, data in extra:
            z.writestr(name, data)
        if writer:
            writer(z)

def header_row():
    cells = "".join(f'<c r="{c}1" t="inlineStr"><is><t>{h}</t></is></c>' for c, h in zip("ABCDEFGH", HEADER.strip().split(",")))
    return f'<row r="1">{cells}</row>'

def build(tmp):
    cases = []
    p = os.path.join(tmp, "bomb.csv.gz")  # gzip inflating to 2 GiB
    line = "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
    with gzip.open(p, "wb", compresslevel=9) as f:
        f.write(HEADER.encode())
        block = (line * 10000).encode()
        for _ in range((2 << 30) // len(block) + 1):
            f.write(block)
    cases.append(("gzip inflating to 2 GiB", p, None))
    import polars as pl
    p = os.path.join(tmp, "rows.parquet")  # tens of millions of rows, a few hundred KB
    n = 30_000_000
    pl.DataFrame({"InvoiceNo": ["536365"], "StockCode": ["85123A"], "Description": ["X"], "Quantity": [6], "InvoiceDate": ["2010-12-01 08:26:00"], "UnitPrice": [2.55], "CustomerID": [17850.0], "Country": ["UK"]}).select(pl.all().repeat_by(n).explode()).write_parquet(p, compression="zstd", row_group_size=4_000_000)
    cases.append((f"Parquet, {n:,} rows", p, None))
    p = os.path.join(tmp, "dims.xlsx")  # a cell reference at column ~4 billion
    xlsx(p, lambda: iter([header_row().replace("</row>", '<c r="LXQEASV1" t="inlineStr"><is><t>x</t></is></c></row>')]))
    cases.append(("XLSX, cell at column LXQEASV", p, None))
    p = os.path.join(tmp, "declared.xlsx")  # a sheet that declares Excel's whole grid
    def few():
        yield header_row()
        for r in range(2, 200):
            cells = [str(500000 + r), "X", "T", "2", "2011-01-0%d 10:00" % (1 + r % 9), "1.5", str(12000 + r % 40), "UK"]
            yield f'<row r="{r}">' + "".join(f'<c r="{c}{r}" t="inlineStr"><is><t>{v}</t></is></c>' for c, v in zip("ABCDEFGH", cells)) + "</row>"
    xlsx(p, few, dimension='<dimension ref="A1:XFD1048576"/>')
    cases.append(("XLSX, dimension A1:XFD1048576", p, None))
    p = os.path.join(tmp, "rows.xlsx")  # 10 M rows
    def tall():
        yield header_row()
        for start in range(2, 10_000_002, 100_000):
            yield "".join(f'<row r="{r}"><c r="A{r}"><v>1</v></c></row>' for r in range(start, start + 100_000))
    xlsx(p, tall)
    cases.append(("XLSX, 10,000,000 rows", p, None))
    p = os.path.join(tmp, "declares.xlsx")  # a 3 KB file that declares 10^14 shared strings
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    xlsx(p, lambda: iter([header_row()]), [("xl/sharedStrings.xml", f'<sst {ns} uniqueCount="100000000000000"><si><t>x</t></si></sst>')])
    cases.append(("XLSX, uniqueCount = 10^14", p, None))
    p = os.path.join(tmp, "empties.xlsx")  # 80 million empty shared strings in about 2 MB
    def empties(z):
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            f.write(f"<sst {ns}>".encode())
            block = b"<si><t/></si>" * 1_000_000
            for _ in range(80):
                f.write(block)
            f.write(b"</sst>")
    xlsx(p, lambda: iter([header_row()]), (), writer=empties)
    cases.append(("XLSX, 80,000,000 empty shared strings", p, None))
    import polars as pl
    p = os.path.join(tmp, "dict.parquet")  # a 100 KB id and invoice on 100,000 rows
    n, big = 100_000, "x" * 100_000
    parquet_rows(pl, n, pl.Series([big] * n, dtype=pl.Categorical)).write_parquet(p)
    cases.append(("Parquet, 100 KB dictionary value on 100,000 rows", p, None))
    p = os.path.join(tmp, "three.parquet")  # three 100 MB values
    parquet_rows(pl, 3, pl.Series(["a" * 100_000_000, "b" * 100_000_000, "c" * 100_000_000], dtype=pl.Categorical)).write_parquet(p)
    cases.append(("Parquet, three 100 MB values", p, None))
    p = os.path.join(tmp, "groups.parquet")  # 16,000 row groups of 10 rows
    parquet_rows(pl, 160_000, pl.Series([str(12000 + i % 500) for i in range(160_000)])).write_parquet(p, row_group_size=10)
    cases.append(("Parquet, 16,000 row groups", p, None))
    p = os.path.join(tmp, "customers.csv.gz")  # 5,000,000 customers, about 33 MB
    with gzip.open(p, "wt", compresslevel=6) as f:
        f.write(HEADER)
        for c in range(5_000_000):
            f.write(f"{600000 + c},A,T,1,2011-0{1 + c % 9}-0{1 + c % 9} 10:00,1.5,{1000000 + c},UK\n")
    cases.append(("CSV.gz, 5,000,000 customers", p, None))
    return cases

def parquet_rows(pl, n, ids):
    """A UCI-layout frame of n rows whose invoice and customer columns are `ids`."""
    return pl.DataFrame({"InvoiceNo": ids, "StockCode": pl.repeat("A", n, eager=True), "Description": pl.repeat("X", n, eager=True),
        "Quantity": pl.repeat(1, n, eager=True), "InvoiceDate": pl.repeat("2011-01-01 10:00:00", n, eager=True),
        "UnitPrice": pl.repeat(1.5, n, eager=True), "CustomerID": ids, "Country": pl.repeat("UK", n, eager=True)})

def request(base, method, path, body=None, ctype=None):
    req = urllib.request.Request(base + path, data=body, method=method, headers={"Authorization": f"Bearer {TOKEN}"})
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

def upload(base, path, name):
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n').encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return request(base, "POST", "/v1/runs", body, f"multipart/form-data; boundary={boundary}")

def wait(base, rid):
    while True:
        status, v = request(base, "GET", f"/v1/runs/{rid}")
        if v["run"]["status"] in ("done", "failed"):
            return v["run"]
        time.sleep(0.2)

def peak_kib(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM:"):
            return int(l.split()[1])

def main():
    with tempfile.TemporaryDirectory() as tmp:
        print("building the inputs ...", file=sys.stderr)
        cases = build(tmp)
        data = os.path.join(tmp, "data")
        env = dict(os.environ, RFM_AGENT_TOKEN=TOKEN, RFM_AGENT__SERVER__ALLOW_CUSTOM_TEMPLATES="true")
        svc = subprocess.Popen([BIN, "serve", "--bind", "127.0.0.1:0", "--data-dir", data], env=env, stderr=subprocess.PIPE, text=True)
        line = svc.stderr.readline()
        base = line.split()[3]
        print(f"| upload | size | answer | service peak | run's peak | time |\n|---|---:|---|---:|---:|---:|")
        def measure(what, size, action):
            open(f"/proc/{svc.pid}/clear_refs", "w").write("5")
            started = time.time()
            answer, run_peak = action()
            print(f"| {what} | {size} | {answer[:150]} | {peak_kib(svc.pid) / 1024:.0f} MiB | {run_peak} | {time.time() - started:.1f} s |", flush=True)
        for what, path, _ in cases:
            name = os.path.basename(path)
            def act(path=path, name=name):
                status, v = upload(base, path, name)
                if status != 202:
                    return f"{status}: {v}", "-"
                run = wait(base, v["id"])
                return f'{run["status"]}: {run.get("error") or ""}', f'{run.get("peak_mib", "-")} MiB'
            measure(what, f"{os.path.getsize(path) / 1e6:.1f} MB", act)
        # Sixteen bodies of 60 MB at once behind a form field the service does not take.
        import concurrent.futures
        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="unknown"\r\n\r\n').encode() + b"v" * (60 << 20) + f"\r\n--{boundary}--\r\n".encode()
        def unknown_fields():
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                answers = list(pool.map(lambda _: request(base, "POST", "/v1/runs", body, f"multipart/form-data; boundary={boundary}")[0], range(16)))
            return f"{answers.count(400)} of 16 refused with 400", "-"
        measure("16 bodies of 60 MB behind an unknown field, at once", "960 MB", unknown_fields)
        # Templates: a finished run, then its campaigns rewritten with hostile templates.
        status, v = request(base, "POST", "/v1/runs", *multipart_sample())
        rid = v["id"]; wait(base, rid)
        segments = open(os.path.join(os.path.dirname(__file__), "..", "prompts", "segments.toml")).read()
        for what, tpl in [
            ("template: nested range(100000) loops", "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"),
            ("template: 'x' * 100000000 in a loop", "{% for i in range(1000) %}{{ 'x' * 100000000 }}{% endfor %}"),
            ("template: a value printed 10^8 times", "{% for i in range(100000) %}{% for j in range(1000) %}{{ name }}{% endfor %}{% endfor %}"),
        ]:
            body = json.dumps({"segments_toml": segments.replace("{{ first_name }}", tpl, 1)}).encode()
            def act(body=body):
                status, v = request(base, "POST", f"/v1/runs/{rid}/campaigns", body, "application/json")
                if status != 202:
                    return f"{status}: {v['error']}", "-"
                run = wait(base, rid)
                return f'{run["status"]}: {run.get("error") or ""}', f'{run.get("peak_mib", "-")} MiB'
            measure(what, f"{len(body) / 1e3:.1f} KB", act)
        svc.terminate(); svc.wait(timeout=30)

def multipart_sample():
    boundary = uuid.uuid4().hex
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="sample"\r\n\r\ntrue\r\n--{boundary}--\r\n'.encode()
    return body, f"multipart/form-data; boundary={boundary}"

main()
