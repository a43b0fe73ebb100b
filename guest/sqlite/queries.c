/*
 * queries.c - SQLite as a Gate program: fill an in-memory database and
 * query it.
 *
 * One run opens a ":memory:" database and:
 *   1. creates the tables grp(id, label) and item(id, grp, name, price, qty),
 *      inserts GROUPS groups and n items in one transaction through one
 *      prepared statement (values from a xorshift32 generator, seed
 *      0x1234abcd, steps <<13, >>17, <<5), then indexes item(name) and
 *      item(grp);
 *   2. aggregates over the whole table, and grouped by grp;
 *   3. looks up every 16th inserted name through the name index (plus as
 *      many names that do not exist) and counts a few name ranges;
 *   4. joins item with grp, grouped and ordered by an aggregate;
 *   5. updates and deletes some rows and aggregates again;
 *   6. sorts the whole table by price and name and reads a page from the
 *      middle.
 * Every value of every result row, as SQLite's text, goes into a 64-bit
 * FNV-1a checksum (with a separator after each value and each row).
 *
 * The result is one line, "sqlite: <n> items, <r> result rows, checksum
 * <16 hex digits>\n".
 *
 * Exports:
 *   queries        n = ITEMS; the line to the debug log, then accepts an
 *                  origin stream, writes the line there, closes it, returns
 *   queries_debug  n = ITEMS; the line to the debug log only (no services)
 *   queries_small  n = SMALL_ITEMS; the debug log only (quick, for tests)
 * Any SQLite error logs "error: <what>: <message>\n" and exits with 1.
 */

#include <stdint.h>
#include <string.h>

#include "../examples/util.h"
#include "sqlite3.h"

#define ITEMS 50000
#define SMALL_ITEMS 500
#define GROUPS 64

static sqlite3 *db;
static uint64_t checksum;
static uint32_t result_rows;

static void check(int rc, const char *what)
{
	if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE)
		return;
	gate_debug_str("error: ");
	gate_debug_str(what);
	gate_debug_str(": ");
	gate_debug_str(db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	gate_debug_str("\n");
	gate_exit(1);
}

static void fold(const void *data, size_t size)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < size; i++) {
		checksum ^= p[i];
		checksum *= 0x100000001b3ULL;
	}
}

/* Step a prepared statement to its end, folding every row into the checksum. */
static void drain(sqlite3_stmt *stmt, const char *what)
{
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int columns = sqlite3_column_count(stmt);
		for (int i = 0; i < columns; i++) {
			const unsigned char *text = sqlite3_column_text(stmt, i);
			if (text != NULL)
				fold(text, (size_t) sqlite3_column_bytes(stmt, i));
			fold("\x1f", 1);
		}
		fold("\x1e", 1);
		result_rows++;
	}
	check(rc, what);
}

static sqlite3_stmt *prepare(const char *sql)
{
	sqlite3_stmt *stmt;
	check(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), sql);
	return stmt;
}

/* Run SQL text (one or more statements), folding every result row. */
static void run(const char *sql)
{
	while (*sql != '\0') {
		sqlite3_stmt *stmt;
		const char *rest;
		check(sqlite3_prepare_v2(db, sql, -1, &stmt, &rest), sql);
		if (stmt != NULL) {
			drain(stmt, sql);
			sqlite3_finalize(stmt);
		}
		sql = rest;
	}
}

static uint32_t next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* The name of the item made from random value v. */
static void item_name(char buf[32], uint32_t v)
{
	sqlite3_snprintf(32, buf, "item-%08x", v);
}

static void fill(int n)
{
	run("CREATE TABLE grp(id INTEGER PRIMARY KEY, label TEXT NOT NULL);"
	    "CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL REFERENCES grp(id),"
	    " name TEXT NOT NULL, price REAL NOT NULL, qty INTEGER NOT NULL);"
	    "BEGIN;");
	sqlite3_stmt *g = prepare("INSERT INTO grp(id, label) VALUES (?1, printf('group-%02d', ?1))");
	for (int i = 0; i < GROUPS; i++) {
		sqlite3_bind_int(g, 1, i);
		drain(g, "insert group");
		sqlite3_reset(g);
	}
	sqlite3_finalize(g);

	sqlite3_stmt *ins = prepare("INSERT INTO item(grp, name, price, qty) VALUES (?, ?, ?, ?)");
	uint32_t x = 0x1234abcd;
	char name[32];
	for (int i = 0; i < n; i++) {
		uint32_t v = next(&x);
		item_name(name, v);
		sqlite3_bind_int(ins, 1, (int) (v % GROUPS));
		sqlite3_bind_text(ins, 2, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(ins, 3, (double) (v % 100000) / 100.0);
		sqlite3_bind_int(ins, 4, (int) ((v >> 8) % 50));
		drain(ins, "insert item");
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);
	run("COMMIT;"
	    "CREATE INDEX item_name ON item(name);"
	    "CREATE INDEX item_grp ON item(grp);");
}

static void lookups(int n)
{
	sqlite3_stmt *by_name = prepare("SELECT id, grp, qty, price FROM item WHERE name = ?");
	uint32_t x = 0x1234abcd;
	char name[32];
	for (int i = 0; i < n; i++) {
		uint32_t v = next(&x);
		if (i % 16 != 0)
			continue;
		for (int miss = 0; miss < 2; miss++) {
			item_name(name, miss ? ~v : v);
			sqlite3_bind_text(by_name, 1, name, -1, SQLITE_TRANSIENT);
			drain(by_name, "lookup");
			sqlite3_reset(by_name);
		}
	}
	sqlite3_finalize(by_name);

	sqlite3_stmt *range = prepare("SELECT count(*), sum(qty) FROM item WHERE name >= ? AND name < ?");
	static const char *const bounds[] = {"item-0", "item-1", "item-8", "item-9", "item-f0", "item-f1"};
	for (int i = 0; i < 6; i += 2) {
		sqlite3_bind_text(range, 1, bounds[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(range, 2, bounds[i + 1], -1, SQLITE_STATIC);
		drain(range, "range");
		sqlite3_reset(range);
	}
	sqlite3_finalize(range);
}

static void run_queries(int n)
{
	checksum = 0xcbf29ce484222325ULL;
	result_rows = 0;
	check(sqlite3_open(":memory:", &db), "open");

	fill(n);
	run("SELECT count(*), sum(qty), round(sum(price), 2), min(name), max(name) FROM item;"
	    "SELECT grp, count(*), sum(qty), round(avg(price), 4), max(price) FROM item GROUP BY grp ORDER BY grp;");
	lookups(n);
	run("SELECT g.label, count(*), round(sum(i.qty * i.price), 2) AS value FROM item i JOIN grp g ON g.id = i.grp"
	    " WHERE i.qty > 25 GROUP BY g.label ORDER BY value DESC, g.label LIMIT 20;");
	run("UPDATE item SET qty = qty + 1 WHERE grp = 7;"
	    "DELETE FROM item WHERE qty = 0;"
	    "SELECT count(*), sum(qty), total(price) > 0 FROM item;");
	static char page[160];
	sqlite3_snprintf(sizeof page, page, "SELECT id, name, price FROM item ORDER BY price, name LIMIT 25 OFFSET %d;", n / 2);
	run(page);

	check(sqlite3_close(db), "close");
	db = NULL;
}

/* Run with n items and format the result line; returns its length. */
static int compute(int n, char *line, int size)
{
	run_queries(n);
	sqlite3_snprintf(size, line, "sqlite: %d items, %u result rows, checksum %016llx\n", n, result_rows,
	                 (unsigned long long) checksum);
	return (int) strlen(line);
}

EXPORT(queries) void queries(void)
{
	char line[96];
	int len = compute(ITEMS, line, sizeof line);
	gate_debug_data(line, (size_t) len);

	discover_origin();
	accept_stream(0);
	if (!stream_write(line, (size_t) len))
		fail("client closed the stream");
	stream_close();
}

EXPORT(queries_debug) void queries_debug(void)
{
	char line[96];
	int len = compute(ITEMS, line, sizeof line);
	gate_debug_data(line, (size_t) len);
}

EXPORT(queries_small) void queries_small(void)
{
	char line[96];
	int len = compute(SMALL_ITEMS, line, sizeof line);
	gate_debug_data(line, (size_t) len);
}
