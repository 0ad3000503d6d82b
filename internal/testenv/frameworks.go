package testenv

// The exact DDL of the site tables of Wagtail, django-tenants and
// django-pgschemas, as Django 3.2's schema editor writes them for the
// models of those projects' docs, per engine. wagtailcore_site's foreign key
// needs wagtailcore_page: WagtailPageStub stands in for it (only its id
// matters here).

// WagtailPageStub is a minimal wagtailcore_page, per engine; create it
// before WagtailSiteDDL.
var WagtailPageStub = map[string]string{
	"postgres": `CREATE TABLE "wagtailcore_page" ("id" serial NOT NULL PRIMARY KEY)`,
	"sqlite":   `CREATE TABLE "wagtailcore_page" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT)`,
	"mysql":    "CREATE TABLE `wagtailcore_page` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY)",
}

// WagtailSiteDDL is wagtailcore_site's final state (Wagtail 4.1), per
// engine.
var WagtailSiteDDL = map[string]string{
	"postgres": `CREATE TABLE "wagtailcore_site" ("id" serial NOT NULL PRIMARY KEY, "hostname" varchar(255) NOT NULL,
  "port" integer NOT NULL, "site_name" varchar(255) NOT NULL, "root_page_id" integer NOT NULL,
  "is_default_site" boolean NOT NULL);
ALTER TABLE "wagtailcore_site" ADD CONSTRAINT "wagtailcore_site_hostname_port_2c626d70_uniq" UNIQUE ("hostname", "port");
ALTER TABLE "wagtailcore_site" ADD CONSTRAINT "wagtailcore_site_root_page_id_e02fb95c_fk_wagtailcore_page_id"
  FOREIGN KEY ("root_page_id") REFERENCES "wagtailcore_page" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "wagtailcore_site_hostname_96b20b46" ON "wagtailcore_site" ("hostname");
CREATE INDEX "wagtailcore_site_hostname_96b20b46_like" ON "wagtailcore_site" ("hostname" varchar_pattern_ops);
CREATE INDEX "wagtailcore_site_root_page_id_e02fb95c" ON "wagtailcore_site" ("root_page_id");`,
	"sqlite": `CREATE TABLE "wagtailcore_site" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "hostname" varchar(255) NOT NULL,
  "port" integer NOT NULL, "site_name" varchar(255) NOT NULL,
  "root_page_id" integer NOT NULL REFERENCES "wagtailcore_page" ("id") DEFERRABLE INITIALLY DEFERRED,
  "is_default_site" bool NOT NULL);
CREATE UNIQUE INDEX "wagtailcore_site_hostname_port_2c626d70_uniq" ON "wagtailcore_site" ("hostname", "port");
CREATE INDEX "wagtailcore_site_hostname_96b20b46" ON "wagtailcore_site" ("hostname");
CREATE INDEX "wagtailcore_site_root_page_id_e02fb95c" ON "wagtailcore_site" ("root_page_id");`,
	"mysql": "CREATE TABLE `wagtailcore_site` (`id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY, `hostname` varchar(255) NOT NULL,\n" +
		"  `port` integer NOT NULL, `site_name` varchar(255) NOT NULL, `root_page_id` integer NOT NULL,\n" +
		"  `is_default_site` bool NOT NULL);\n" +
		"ALTER TABLE `wagtailcore_site` ADD CONSTRAINT `wagtailcore_site_hostname_port_2c626d70_uniq` UNIQUE (`hostname`, `port`);\n" +
		"ALTER TABLE `wagtailcore_site` ADD CONSTRAINT `wagtailcore_site_root_page_id_e02fb95c_fk_wagtailcore_page_id`\n" +
		"  FOREIGN KEY (`root_page_id`) REFERENCES `wagtailcore_page` (`id`);\n" +
		"CREATE INDEX `wagtailcore_site_hostname_96b20b46` ON `wagtailcore_site` (`hostname`);",
}

// TenantsDDL is the django-tenants example of its docs (TENANT_MODEL
// customers.Client, TENANT_DOMAIN_MODEL customers.Domain, BigAutoField)
// on PostgreSQL, the only engine django-tenants supports. It goes in the
// current schema.
const TenantsDDL = `CREATE TABLE "customers_client" ("id" bigserial NOT NULL PRIMARY KEY, "schema_name" varchar(63) NOT NULL UNIQUE,
  "name" varchar(100) NOT NULL, "paid_until" date NOT NULL, "on_trial" boolean NOT NULL, "created_on" date NOT NULL);
CREATE TABLE "customers_domain" ("id" bigserial NOT NULL PRIMARY KEY, "domain" varchar(253) NOT NULL UNIQUE,
  "is_primary" boolean NOT NULL, "tenant_id" bigint NOT NULL);
CREATE INDEX "customers_client_schema_name_e47dad99_like" ON "customers_client" ("schema_name" varchar_pattern_ops);
ALTER TABLE "customers_domain" ADD CONSTRAINT "customers_domain_tenant_id_82b7fe24_fk_customers_client_id"
  FOREIGN KEY ("tenant_id") REFERENCES "customers_client" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "customers_domain_domain_0e968586_like" ON "customers_domain" ("domain" varchar_pattern_ops);
CREATE INDEX "customers_domain_is_primary_73aefb26" ON "customers_domain" ("is_primary");
CREATE INDEX "customers_domain_tenant_id_82b7fe24" ON "customers_domain" ("tenant_id");`

// PGSchemasDDL is django-pgschemas' sandbox models (shared_public.Tenant,
// shared_public.Domain) on PostgreSQL.
const PGSchemasDDL = `CREATE TABLE "shared_public_tenant" ("id" bigserial NOT NULL PRIMARY KEY, "schema_name" varchar(63) NOT NULL UNIQUE);
CREATE TABLE "shared_public_domain" ("id" bigserial NOT NULL PRIMARY KEY, "domain" varchar(253) NOT NULL,
  "folder" varchar(253) NOT NULL, "is_primary" boolean NOT NULL, "redirect_to_primary" boolean NOT NULL,
  "tenant_id" bigint NOT NULL);
ALTER TABLE "shared_public_domain" ADD CONSTRAINT "shared_public_domain_domain_folder_c2e7a4a6_uniq" UNIQUE ("domain", "folder");
ALTER TABLE "shared_public_domain" ADD CONSTRAINT "shared_public_domain_tenant_id_42d8fb15_fk_shared_pu"
  FOREIGN KEY ("tenant_id") REFERENCES "shared_public_tenant" ("id") DEFERRABLE INITIALLY DEFERRED;`
