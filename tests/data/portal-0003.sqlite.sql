-- The portal's store as Onyxia Hub 246b0e2 (revision 0003) left it, on SQLite:
-- sqlite3's iterdump. Made with tests/data/README.md's recipe; test_store_upgrade.py loads it.
BEGIN TRANSACTION;
CREATE TABLE onyxia_portal_alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT onyxia_portal_alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "onyxia_portal_alembic_version" VALUES('0003');
CREATE TABLE portal_accounts (
	username VARCHAR(255) NOT NULL, 
	git_name VARCHAR(100), 
	git_email VARCHAR(254), 
	git_token TEXT, 
	git_repository VARCHAR(2048), 
	git_branch VARCHAR(255), 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (username)
);
INSERT INTO "portal_accounts" VALUES('ann','Ann Lovelace','ann@example.org','gAAAAABrESCBpyciDpKU8qioQUrQKg-e5e0zom9xEbgm4h7gTnI-WvCbWSaIhHWD3MdwjtptXlTNLko6P8aCZOKH56LtmtBoalalzWY9KnP0oTySIUr6qmXrOtgYzg0djhpyfWtb0Xfw','https://git.example.org/ann/course.git','main','2026-12-03 07:55:45.559125');
INSERT INTO "portal_accounts" VALUES('bob','Bob',NULL,NULL,NULL,NULL,'2026-12-03 07:55:45.564130');
CREATE TABLE portal_configurations (
	id INTEGER NOT NULL, 
	username VARCHAR(255) NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	server_name VARCHAR(30) DEFAULT '' NOT NULL, 
	user_options TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_portal_configurations_username_name UNIQUE (username, name)
);
INSERT INTO "portal_configurations" VALUES(1,'ann','big R','rlab','{"cpu": "2", "memory": "4Gi", "service": "jupyter-r"}','2026-12-03 07:55:45.572122','2026-12-03 07:55:45.572132');
CREATE TABLE portal_storage_credentials (
	username VARCHAR(255) NOT NULL, 
	scope VARCHAR(64) NOT NULL, 
	issuer VARCHAR(32) DEFAULT '' NOT NULL, 
	store_id VARCHAR(64) DEFAULT '' NOT NULL, 
	payload TEXT, 
	issued_at FLOAT, 
	expires_at FLOAT, 
	renew_at FLOAT, 
	issue_count INTEGER DEFAULT '0' NOT NULL, 
	lease_owner VARCHAR(64), 
	lease_until FLOAT, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (username, scope)
);
INSERT INTO "portal_storage_credentials" VALUES('ann','user','accesskeys','dump-store','gAAAAABrESCBYrsmyOXDxlRm7Ra3rTSE1r4P6jX38cMCYJFpu1StEzWJ1N2KVF-O7zCXTHXCOSATwGvuAz4jlRQpEAQJakqnsptPIt6Nlmwj7U0CKl9IP8SbOJgCFxDNn6Nt_VFkWi4VvGtRw0A0v2JTqbFbh35gwuJ8XdACu6OzP0_U_kG1JYs7vpwqMtLLpwrN8DSvcMAX5p1-UOjGm2NKdMYlx055u1mOqk5dLod-vRqONH8QEfCctcKV5PtPUSjCmlmhQQ0jOyV3k9ZQMlowIh6FolRkUSJFfWaXEznPYNWz3nXog_-yDHeP2_sPXdAPqbcH0AsORWgIwPWww24uBir2C5f7IRv9YwLv54d226cKt54tNg35KKlBfOSsTsxD3smwkSju6WHCtEFA-0gXP3Js9KelhxjDz3cVMktdueRo6QsK4FVE0aiFjzPgrft-Yj-mAukLhLOY_vZaQ3Dep9YT98oZc_cskeLkQ5DN-cKbPcqKnV4HGWgNkaNU6hlYy9N2x4BV',1700000000.0,1700604800.0,1700302400.0,1,NULL,NULL,1.79628454557809329032e+09);
COMMIT;
