-- The portal's store as Onyxia Hub 246b0e2 (revision 0003) left it, on PostgreSQL 15:
-- pg_dump --no-owner --no-privileges --inserts, psql meta-commands removed.
-- Made with tests/data/README.md's recipe; test_store_upgrade.py loads it.

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE public.onyxia_portal_alembic_version (
    version_num character varying(32) NOT NULL
);

CREATE TABLE public.portal_accounts (
    username character varying(255) NOT NULL,
    git_name character varying(100),
    git_email character varying(254),
    git_token text,
    git_repository character varying(2048),
    git_branch character varying(255),
    updated_at timestamp without time zone NOT NULL
);

CREATE TABLE public.portal_configurations (
    id integer NOT NULL,
    username character varying(255) NOT NULL,
    name character varying(64) NOT NULL,
    server_name character varying(30) DEFAULT ''::character varying NOT NULL,
    user_options text NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL
);

CREATE SEQUENCE public.portal_configurations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.portal_configurations_id_seq OWNED BY public.portal_configurations.id;

CREATE TABLE public.portal_storage_credentials (
    username character varying(255) NOT NULL,
    scope character varying(64) NOT NULL,
    issuer character varying(32) DEFAULT ''::character varying NOT NULL,
    store_id character varying(64) DEFAULT ''::character varying NOT NULL,
    payload text,
    issued_at double precision,
    expires_at double precision,
    renew_at double precision,
    issue_count integer DEFAULT 0 NOT NULL,
    lease_owner character varying(64),
    lease_until double precision,
    updated_at double precision NOT NULL
);

ALTER TABLE ONLY public.portal_configurations ALTER COLUMN id SET DEFAULT nextval('public.portal_configurations_id_seq'::regclass);

INSERT INTO public.onyxia_portal_alembic_version VALUES ('0003');

INSERT INTO public.portal_accounts VALUES ('ann', 'Ann Lovelace', 'ann@example.org', 'gAAAAABrESCYjuiClRmoq529FdWLBa-5m9P7Evlp3F1GuopjjD_8x1FRwkIDdf1KrrwAmqfd3evBANe5gEwO87WrtvpjpYAfz2H5baKsyEMV9qoTTpn3X3hoyAMLPh4yM0yQw6tTTAQV', 'https://git.example.org/ann/course.git', 'main', '2026-12-03 07:56:08.953951');
INSERT INTO public.portal_accounts VALUES ('bob', 'Bob', NULL, NULL, NULL, NULL, '2026-12-03 07:56:08.967788');

INSERT INTO public.portal_configurations VALUES (1, 'ann', 'big R', 'rlab', '{"cpu": "2", "memory": "4Gi", "service": "jupyter-r"}', '2026-12-03 07:56:08.980069', '2026-12-03 07:56:08.980084');

INSERT INTO public.portal_storage_credentials VALUES ('ann', 'user', 'accesskeys', 'dump-store', 'gAAAAABrESCYEzCzOmNkc4YCb1Nf2kTfpY7VIoQq9z9qwQg9RCJlJq3eUO4vNVLK38_YOCC0LWnkywsbzN9-CL6lqp3S2JZudYjNCGf_FKbHI7sMAQZ0lrBf4mmNMHkuJxNM73ssUf8ktYYd_NpwsJ2PVjfve-K1OlX6_MhBUQrfJ9EDuA1ktSW0Kx0KM9IK1GzTY9so-cPZTS0IeDOFzcGdspj5Cg2jlejNcoFzEMI8ILkPBouDosBnuV5GaJBVrCQwtSzGceK3Q7ascTmWM4w2Ae_rrgGnLvvIuURTzbPuBRTxdes_ZuuYMeVV1fDCGok_2O_VRVMDWWT83hMGneD2QqvDTngWzgEf9OscxOXGHgFaisvxkowC0crBj-ud9_2LZLcdlNyq8IIoLIvHYEPSArsY9NsY1FnKrr9U_pmfzTD4fWPYy2vU7t2XxyypJhx8j5ImkiWBUGRhRt3yLSAUVKqvJNB716NDdHaCnl2w0GFTEzZy_E35_feFpLDj9b5AMKPFlufj', 1700000000, 1700604800, 1700302400, 1, NULL, NULL, 1796284568.9881253);

SELECT pg_catalog.setval('public.portal_configurations_id_seq', 1, true);

ALTER TABLE ONLY public.onyxia_portal_alembic_version
    ADD CONSTRAINT onyxia_portal_alembic_version_pkc PRIMARY KEY (version_num);

ALTER TABLE ONLY public.portal_accounts
    ADD CONSTRAINT portal_accounts_pkey PRIMARY KEY (username);

ALTER TABLE ONLY public.portal_configurations
    ADD CONSTRAINT portal_configurations_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.portal_storage_credentials
    ADD CONSTRAINT portal_storage_credentials_pkey PRIMARY KEY (username, scope);

ALTER TABLE ONLY public.portal_configurations
    ADD CONSTRAINT uq_portal_configurations_username_name UNIQUE (username, name);

